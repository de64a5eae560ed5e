"""What slruntime-image installs, as far as the layer's own files tell without BitBake:
the frozen slr and the layout, no Python; the SD-card layout; the licenses of what the
recipes build; slr as virtual-runc.  tools/yocto/check-layer proves the full runtime
closure (oe-core's packages included) with BitBake's parse cache."""
import glob
import hashlib
import os
import re
import subprocess
import textwrap

import pytest

from layer_paths import LAYER, REPO, TESTS_LAYER, conf_assignments, read

RECIPES = {os.path.basename(p).split("_")[0].removesuffix(".bb"): p
           for p in glob.glob(os.path.join(LAYER, "recipes-*", "*", "*.bb"))}
IMAGE_INC = os.path.join(LAYER, "recipes-core", "images", "slruntime-image.inc")
COMPACT = RECIPES["slruntime-compact"]
WKS = os.path.join(LAYER, "files", "wic", "slruntime-sdimage.wks")


def runtime_names(value):
    """The package names a RDEPENDS/RRECOMMENDS/IMAGE_INSTALL value can give: plain
    words, every string literal of inline Python (both branches of bb.utils.contains),
    and the values of this layer's variables it references."""
    names = set()
    for literal in re.findall(r"'([^']*)'", " ".join(re.findall(r"\$\{@[^}]*\}", value))):
        names.update(literal.split())
    plain = re.sub(r"\$\{@[^}]*\}", " ", value)
    for word in plain.split():
        if word.startswith("${") and word.endswith("}"):
            names.add(word)             # resolved by the caller
        elif "$" not in word and not word.startswith("("):
            names.add(word)
    names.discard("DISTRO_FEATURES")
    return names


def recipe_runtime_names(path):
    """Every name a package of the recipe RDEPENDS on or RRECOMMENDS (all overrides
    except class-native), with the recipe's own variables expanded."""
    values = conf_assignments(path)
    found = set()
    for name, value in values.items():
        if re.match(r"(RDEPENDS|RRECOMMENDS):", name) and not name.endswith(":class-native"):
            for word in runtime_names(value):
                if word.startswith("${"):
                    found |= runtime_names(values.get(word[2:-1], ""))
                else:
                    found.add(word)
    return found - {"${PN}"}


def product_closure():
    """(name, wanted by) of everything slruntime-image installs that this layer
    defines, starting from IMAGE_INSTALL; names of other layers end the walk."""
    image = conf_assignments(IMAGE_INC)
    queue = [(n, "IMAGE_INSTALL") for n in runtime_names(image["IMAGE_INSTALL"])
             if not n.startswith("${")]
    seen = {}
    while queue:
        name, wanted_by = queue.pop()
        if name in seen:
            continue
        seen[name] = wanted_by
        recipe = RECIPES.get(name) or RECIPES.get(re.sub(r"-(busybox|systemd|runc)$", "", name))
        if recipe:
            queue += [(n, name) for n in recipe_runtime_names(recipe)]
    return seen


def test_the_product_image_installs_the_frozen_slr_and_the_layout():
    closure = product_closure()
    assert {"packagegroup-slruntime", "slruntime-compact", "slruntime-rootfs-config",
            "slruntime-rootfs-config-busybox", "slruntime-rootfs-config-systemd",
            "libseccomp"} <= set(closure), closure


def test_no_python_in_the_product_image_closure():
    python = {n: by for n, by in product_closure().items()
              if n.startswith("python3") or n in ("slruntime", "python3-core")}
    assert not python, f"Python on the target: {python}"


def test_the_python_package_is_an_explicit_opt_in():
    image = read(IMAGE_INC)
    assert re.search(r'^FEATURE_PACKAGES_slruntime-python = "slruntime"$', image, re.MULTILINE)
    assert "slruntime-python" not in conf_assignments(IMAGE_INC)["IMAGE_FEATURES"]
    test_image = read(os.path.join(TESTS_LAYER, "recipes-images", "images", "slruntime-image-test.bb"))
    assert "slruntime-python" in re.search(r'IMAGE_FEATURES \+= "([^"]*)"', test_image).group(1)


def test_image_features_keep_extra_image_features():
    # bitbake.conf: IMAGE_FEATURES += "${EXTRA_IMAGE_FEATURES}"; a plain "=" in the
    # image would discard what local.conf adds.
    assert not re.search(r"^IMAGE_FEATURES\s*=", read(IMAGE_INC), re.MULTILINE)
    assert re.search(r'^IMAGE_FEATURES \+= "read-only-rootfs"$', read(IMAGE_INC), re.MULTILINE)


def test_slr_is_the_compact_binary_and_the_python_command_is_slr_python():
    compact = read(COMPACT)
    assert "install -D -m 0755 ${B}/slr ${D}${bindir}/slr\n" in compact
    # The front executes the frozen runtime from where it is installed.
    assert "--frozen-path ${libexecdir}/slruntime/slr" in compact
    assert "install -D -m 0755 ${B}/libexec/slruntime/slr ${D}${libexecdir}/slruntime/slr\n" in compact
    assert conf_assignments(COMPACT)["FILES:${PN}"] == "${libexecdir}/slruntime/slr"
    assert "slr-compact" not in compact
    python = read(RECIPES["slruntime"])
    assert "mv ${D}${bindir}/slr ${D}${bindir}/slr-python" in python


def test_slr_can_be_selected_as_virtual_runc():
    values = conf_assignments(COMPACT)
    assert values["PROVIDES"] == "virtual/runc"
    assert values["RPROVIDES:${PN}-runc"] == "virtual-runc"
    assert values["FILES:${PN}-runc"] == "${bindir}/runc"
    assert "ln -s slr ${D}${bindir}/runc" in read(COMPACT)
    assert re.search(r'^PACKAGES =\+ "\$\{PN\}-runc"$', read(COMPACT), re.MULTILINE)


def test_wks_gives_u_boot_an_extlinux_conf_with_the_serial_console():
    """wic's bootimg_partition writes extlinux/extlinux.conf only with loader=u-boot;
    its append line comes from `bootloader --append` (meta-yocto-bsp's beaglebone wks)."""
    lines = [l for l in read(WKS).splitlines() if l.strip() and not l.startswith("#")]
    boot = next(l for l in lines if l.startswith("part /boot "))
    assert "--source bootimg_partition" in boot
    assert '--sourceparams="loader=u-boot"' in boot
    root = next(l for l in lines if l.startswith("part / "))
    assert "--use-uuid" in root     # root=PARTUUID=...: no guessing mmcblk numbering
    bootloader = [l for l in lines if l.startswith("bootloader ")]
    assert bootloader and re.search(r'--append="[^"]*console=ttyS0,115200', bootloader[0])


def test_runtime_license_file_is_the_declared_apache_license():
    text = read(os.path.join(REPO, "runtime", "LICENSE"))
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    declared = conf_assignments(os.path.join(os.path.dirname(COMPACT), "slruntime.inc"))
    md5 = re.fullmatch(r"file://LICENSE;md5=([0-9a-f]{32})", declared["SLRUNTIME_LICENSE_CHKSUM"])
    assert md5 and hashlib.md5(text.encode()).hexdigest() == md5.group(1)
    pyproject = read(os.path.join(REPO, "runtime", "pyproject.toml"))
    assert 'license = { text = "Apache-2.0" }' in pyproject
    assert conf_assignments(RECIPES["slruntime"])["LICENSE"] == "Apache-2.0"


def test_compact_license_is_what_the_binary_links():
    values = conf_assignments(COMPACT)
    assert values["LICENSE"] == ("Apache-2.0 AND GPL-3.0-only AND PSF-2.0 AND (BSD-3-Clause OR GPL-2.0-only)"
                                 " AND LGPL-2.1-or-later")  # the front links glibc statically
    files = values["LIC_FILES_CHKSUM"].split()
    assert files[0] == "${SLRUNTIME_LICENSE_CHKSUM}"
    for needed in ("/Python-${SLRUNTIME_CPYTHON_PV}/LICENSE;md5=", "/python-prctl/COPYING;md5=",
                   "${COMMON_LICENSE_DIR}/BSD-3-Clause;md5=", "${COMMON_LICENSE_DIR}/LGPL-2.1-or-later;md5="):
        assert any(needed in f for f in files), needed


def python3_recipe_function():
    """slruntime-compact's slruntime_python3_recipe, as BitBake compiles it."""
    text = read(COMPACT)
    start = text.index("def slruntime_python3_recipe")
    end = text.index("\n\n", start)
    return textwrap.dedent(text[start:end])


class Datastore:
    """The two variables the function reads, as BitBake's getVar returns them."""

    def __init__(self, **values):
        self.values = values

    def getVar(self, name):
        return self.values.get(name)


class BitBakeModule:
    """bb.utils.vercmp_string (BitBake's version order for these plain versions),
    bb.parse.mark_dependency and bb.fatal, which the function calls."""

    def __init__(self):
        self.dependencies = []
        outer = self

        class utils:
            @staticmethod
            def vercmp_string(a, b):
                key = lambda v: [int(p) for p in re.findall(r"\d+", v)]
                return (key(a) > key(b)) - (key(a) < key(b))

        class parse:
            @staticmethod
            def mark_dependency(d, path):
                outer.dependencies.append(path)

        self.utils, self.parse = utils, parse

    @staticmethod
    def fatal(message):
        raise RuntimeError(message)


@pytest.fixture
def python3_recipes(tmp_path):
    layer = tmp_path / "meta"
    recipes = layer / "recipes-devtools" / "python"
    recipes.mkdir(parents=True)
    for pv, sha, md5 in (("3.14.6", "6" * 64, "a" * 32), ("3.14.7", "7" * 64, "b" * 32)):
        (recipes / f"python3_{pv}.bb").write_text(
            f'LIC_FILES_CHKSUM = "file://LICENSE;md5={md5}"\nSRC_URI[sha256sum] = "{sha}"\n')
    return str(layer)


def call_python3_recipe(field, **variables):
    bb = BitBakeModule()
    namespace = {"bb": bb, "os": os}
    exec(python3_recipe_function(), namespace)
    return namespace["slruntime_python3_recipe"](Datastore(**variables), field), bb


def test_cpython_release_follows_the_newest_python3_recipe(python3_recipes):
    bbpath = f"/nonexistent:{python3_recipes}"
    assert call_python3_recipe("pv", BBPATH=bbpath)[0] == "3.14.7"
    sha, bb = call_python3_recipe("sha256", BBPATH=bbpath)
    assert sha == "7" * 64
    assert bb.dependencies == [os.path.join(python3_recipes, "recipes-devtools", "python",
                                            "python3_3.14.7.bb")]
    assert call_python3_recipe("license_md5", BBPATH=bbpath)[0] == "b" * 32


def test_cpython_release_follows_preferred_version(python3_recipes):
    wrynose = {"BBPATH": python3_recipes, "PREFERRED_VERSION_python3": "3.14.6%"}
    assert call_python3_recipe("pv", **wrynose)[0] == "3.14.6"
    assert call_python3_recipe("sha256", **wrynose)[0] == "6" * 64


def test_no_python3_recipe_stops_the_parse(tmp_path):
    with pytest.raises(RuntimeError, match="no python3 recipe"):
        call_python3_recipe("pv", BBPATH=str(tmp_path))


def test_cpython_release_is_not_hard_coded():
    values = conf_assignments(COMPACT)
    for name in ("SLRUNTIME_CPYTHON_PV", "SLRUNTIME_CPYTHON_SHA256", "SLRUNTIME_CPYTHON_LICENSE_MD5"):
        assert values[name].startswith("${@slruntime_python3_recipe(d, "), name
    assert not re.search(r"3\.1\d\.\d", read(COMPACT))


def image_shell_function(name, **variables):
    """A shell function of slruntime-image.inc with BitBake's ${VAR}s replaced, as
    BitBake writes it into the task's run script, plus bbfatal as oe-core's logging
    defines it (message on stderr, exit 1)."""
    text = read(IMAGE_INC)
    body = re.search(rf"^{name}\(\) \{{\n(.*?)^\}}$", text, re.MULTILINE | re.DOTALL).group(1)
    for variable, value in variables.items():
        body = body.replace("${" + variable + "}", value)
    assert "${" not in body.replace("$(", ""), f"unreplaced BitBake variable in {name}"
    return f'bbfatal() {{ echo "ERROR: $*" >&2; exit 1; }}\n{name}() {{\n{body}}}\n{name}\n'


def run_image_function(name, **variables):
    return subprocess.run(["bash", "-euc", image_shell_function(name, **variables)],
                          capture_output=True, text=True, timeout=30)


def make_rootfs(root, files):
    for path, size in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\0" * size)


def test_large_files_list_is_written_next_to_the_image(tmp_path):
    rootfs, deploy = tmp_path / "rootfs", tmp_path / "deploy"
    deploy.mkdir()
    make_rootfs(rootfs, {"/usr/bin/slr": 9 << 20, "/lib/libc.so.6": 2 << 20,
                         "/bin/busybox": 700 << 10, "/etc/slr/slr.conf": 200})
    result = run_image_function("slruntime_large_files", IMAGE_ROOTFS=str(rootfs),
                                IMGDEPLOYDIR=str(deploy), IMAGE_NAME="img-20261206.rootfs",
                                IMAGE_LINK_NAME="img")
    assert result.returncode == 0, result.stderr
    listing = (deploy / "img.large-files").read_text()
    assert listing == (f"{9 << 20}\t/usr/bin/slr\n{2 << 20}\t/lib/libc.so.6\n"
                       f"{700 << 10}\t/bin/busybox\n")
    assert os.readlink(deploy / "img.large-files") == "img-20261206.rootfs.large-files"


@pytest.mark.parametrize("python_file", ["/usr/bin/python3.14", "/usr/lib/python3.14/os.py",
                                         "/usr/share/app/tool.pyc", "/opt/x/run.py"])
def test_an_image_with_python_fails_without_the_feature(tmp_path, python_file):
    rootfs = tmp_path / "rootfs"
    make_rootfs(rootfs, {"/usr/bin/slr": 10, python_file: 10})
    result = run_image_function("slruntime_no_python", IMAGE_ROOTFS=str(rootfs),
                                SLRUNTIME_PYTHON_ALLOWED="0")
    assert result.returncode == 1
    assert "carries Python" in result.stderr and python_file in result.stderr
    allowed = run_image_function("slruntime_no_python", IMAGE_ROOTFS=str(rootfs),
                                 SLRUNTIME_PYTHON_ALLOWED="1")
    assert allowed.returncode == 0, allowed.stderr


def test_an_image_without_python_passes(tmp_path):
    rootfs = tmp_path / "rootfs"
    make_rootfs(rootfs, {"/usr/bin/slr": 10, "/etc/slr/seccomp/default.json": 10,
                         "/usr/share/slr/bundles/busybox/config.json": 10})
    result = run_image_function("slruntime_no_python", IMAGE_ROOTFS=str(rootfs),
                                SLRUNTIME_PYTHON_ALLOWED="0")
    assert result.returncode == 0, result.stderr


def test_the_python_check_follows_the_feature():
    assert re.search(r"""^SLRUNTIME_PYTHON_ALLOWED = "\$\{@bb\.utils\.contains\('IMAGE_FEATURES', """
                     r"""'slruntime-python', '1', '0', d\)\}"$""", read(IMAGE_INC), re.MULTILINE)
    assert re.search(r'^ROOTFS_POSTPROCESS_COMMAND \+= "slruntime_large_files slruntime_no_python"$',
                     read(IMAGE_INC), re.MULTILINE)
