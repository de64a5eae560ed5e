"""The layers' configuration and documentation, as yocto-check-layer and
OE's layer index read them."""
import fnmatch
import os
import re

import pytest

from layer_paths import LAYER, REPO, TESTS_LAYER, conf_assignments, layer_files, read

# The release names oe-core's conf/layer.conf declared when the pins of kas/base.yml were
# taken: LAYERSERIES_CORENAMES = "wrynose blacksail" (wrynose is the LTS, blacksail master).
SUPPORTED_SERIES = {"wrynose", "blacksail"}


def test_layer_conf_declares_the_slruntime_collection():
    conf = conf_assignments(os.path.join(LAYER, "conf", "layer.conf"))
    assert conf["BBFILE_COLLECTIONS"] == "slruntime"
    assert conf["BBFILE_PATTERN_slruntime"] == "^${LAYERDIR}/"
    assert conf["BBFILE_PRIORITY_slruntime"].isdigit()
    assert conf["LAYERVERSION_slruntime"].isdigit()
    assert set(conf["LAYERDEPENDS_slruntime"].split()) == {"core", "meta-python"}
    assert set(conf["LAYERSERIES_COMPAT_slruntime"].split()) == SUPPORTED_SERIES


def test_layer_conf_points_at_this_repositorys_runtime():
    conf = conf_assignments(os.path.join(LAYER, "conf", "layer.conf"))
    source = conf["SLRUNTIME_SRC_DIR"].replace("${LAYERDIR}", LAYER)
    assert os.path.isfile(os.path.join(source, "pyproject.toml"))
    assert os.path.isdir(os.path.join(source, "slruntime"))


def test_tests_layer_is_its_own_collection():
    conf = conf_assignments(os.path.join(TESTS_LAYER, "conf", "layer.conf"))
    assert conf["BBFILE_COLLECTIONS"] == "slruntime-tests"
    assert "slruntime" in conf["LAYERDEPENDS_slruntime-tests"].split()
    assert set(conf["LAYERSERIES_COMPAT_slruntime-tests"].split()) == SUPPORTED_SERIES
    assert os.path.isfile(os.path.join(TESTS_LAYER, "lib", "oeqa", "runtime", "cases", "slruntime.py"))


def test_readme_passes_yocto_check_layer():
    # The rules of yocto-check-layer's test_readme; a README that names another README
    # would make it skip them, so this one must not.
    text = read(os.path.join(LAYER, "README.md"))
    assert "maintainer" in text.lower()
    assert "patch" in text.lower()
    assert re.search(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)
    assert "readme" not in text.lower()


def test_readme_documents_building_flashing_and_checking():
    text = read(os.path.join(LAYER, "README.md"))
    for needle in ("kas build kas/qemuarm64.yml", "bmaptool", "tools/yocto/check-layer",
                   "DISTRO_FEATURES", "hwtests"):
        assert needle in text


def test_security_policy_says_where_to_report():
    text = read(os.path.join(LAYER, "SECURITY.md"))
    assert re.search(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)
    assert "vulnerab" in text.lower()


def test_license_file():
    assert "Permission is hereby granted" in read(os.path.join(LAYER, "COPYING.MIT"))


# oe-core's patch QA (insane.bbclass) accepts these Upstream-Status values.
UPSTREAM_STATUS = re.compile(
    r"^Upstream-Status: (Pending|Submitted( \[.+\])?|Accepted|Backport( \[.+\])?|"
    r"Denied( \[.+\])?|Inappropriate \[.+\]|Inactive-Upstream( \[.+\])?)$", re.MULTILINE)


@pytest.mark.parametrize("patch", layer_files(".patch", ".diff"),
                         ids=lambda p: os.path.relpath(p, REPO))
def test_patch_has_upstream_status(patch):
    assert UPSTREAM_STATUS.search(read(patch)), "no valid Upstream-Status line"


def test_the_layer_has_patches_to_check():
    assert layer_files(".patch", ".diff")


@pytest.mark.parametrize("append", layer_files(".bbappend", roots=(LAYER,)),
                         ids=lambda p: os.path.relpath(p, REPO))
def test_bbappend_is_gated_on_the_distro_feature(append):
    """Adding meta-slruntime must not change any task signature: every bbappend only
    includes its .inc when DISTRO_FEATURES has "slruntime" (meta-virtualization's way)."""
    statements = [line for line in read(append).splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    match = re.fullmatch(r"require \$\{@bb\.utils\.contains\('DISTRO_FEATURES', 'slruntime', "
                         r"'([\w./-]+\.inc)', '', d\)\}", statements[0]) if len(statements) == 1 else None
    assert match, f"{append} must consist of one gated require line, found {statements}"
    # BitBake looks a relative require up next to the file, then on BBPATH (the layer).
    include = match.group(1)
    assert os.path.isfile(os.path.join(os.path.dirname(append), include)) \
        or os.path.isfile(os.path.join(LAYER, include)), f"{include} not found"


def test_dynamic_layer_appends_are_read_only_with_their_layer():
    """dynamic-layers/<collection>/ holds appends to a BSP layer's recipes: each is read
    only when BBFILES_DYNAMIC names that collection (no "Nothing to append" without it)."""
    conf = read(os.path.join(LAYER, "conf", "layer.conf")).replace("\\\n", " ")
    dynamic = re.search(r'^BBFILES_DYNAMIC \+= "([^"]*)"', conf, re.MULTILINE).group(1).split()
    patterns = [entry.split(":", 1) for entry in dynamic]
    appends = layer_files(".bbappend", roots=(os.path.join(LAYER, "dynamic-layers"),))
    assert appends
    for append in appends:
        collection = os.path.relpath(append, os.path.join(LAYER, "dynamic-layers")).split(os.sep)[0]
        relative = "${LAYERDIR}/" + os.path.relpath(append, LAYER)
        assert any(name == collection and fnmatch.fnmatch(relative, pattern)
                   for name, pattern in patterns), f"{relative} is not read with {collection}"


def test_the_raspberry_pi_kernel_gets_the_kernel_fragment():
    # linux-yocto_%.bbappend never matches linux-raspberrypi, meta-raspberrypi's kernel.
    kernels = {os.path.basename(p).split("_")[0] for p in layer_files(".bbappend", roots=(LAYER,))
               if "recipes-kernel" in p}
    assert kernels == {"linux-yocto", "linux-raspberrypi", "linux-raspberrypi-v7"}
    fragment = read(os.path.join(LAYER, "recipes-kernel", "linux", "linux-slruntime.inc"))
    assert 'SRC_URI += "file://slruntime.cfg"' in fragment
    assert os.path.isfile(os.path.join(LAYER, "recipes-kernel", "linux", "linux-slruntime",
                                       "slruntime.cfg"))


def test_distro_include_enables_the_feature():
    text = read(os.path.join(LAYER, "conf", "distro", "include", "slruntime.inc"))
    assert re.search(r'^DISTRO_FEATURES:append = " slruntime', text, re.MULTILINE)
    assert "require conf/distro/include/slruntime.inc" in read(
        os.path.join(LAYER, "conf", "distro", "slr.conf"))


def test_wks_file_is_where_wic_finds_it():
    image = read(os.path.join(LAYER, "recipes-core", "images", "slruntime-image.inc"))
    wks = re.search(r'^WKS_FILE = "([^"]+)"', image, re.MULTILINE).group(1)
    assert os.path.isfile(os.path.join(LAYER, "files", "wic", wks))
