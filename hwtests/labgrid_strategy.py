"""SlrStrategy: labgrid strategy of every hwtests target, QEMU or lab board.

off -> shell: (boards with an SD mux) write the image to the SD card through
the host side of the mux, switch the card to the board, power on, wait for
the login prompt and log in.  The time from power-on to a working shell is
kept in `boot_seconds` for the benchmark; with `first_output` set (the line the
image's first container prints at boot, before the login prompt), the time from
power-on to that line is kept in `first_output_seconds` (None when the login
prompt came first: an image without such a container).

labgrid's own ShellStrategy waits for systemd, which a busybox-init image
does not have; hence this strategy.  The env files load it with `imports:`.
"""
import enum
import re
import time

import attr
from labgrid.driver.usbstoragedriver import Mode
from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.strategy.common import Strategy, StrategyError, never_retry


class Status(enum.Enum):
    unknown = 0
    off = 1
    shell = 2


@attr.s(eq=False)
class SlrStrategy(Strategy):
    bindings = {
        "power": "PowerProtocol",
        "console": "ConsoleProtocol",
        "shell": "ShellDriver",
        "sdmux": {"USBSDMuxDriver", "USBSDWireDriver", None},
        "storage": {"USBStorageDriver", None},
    }
    # Name of the `images:` entry flashed to the SD card before booting a
    # board; unused on QEMU (no sdmux binding).
    flash_image = attr.ib(default="wic", validator=attr.validators.instance_of(str))
    # The line of the image's first container (hwtests/image/rootfs.py FIRST_OUTPUT).
    first_output = attr.ib(default="", validator=attr.validators.instance_of(str))

    status = attr.ib(default=Status.unknown)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.boot_seconds = None
        self.first_output_seconds = None

    @never_retry
    @step(args=["status"])
    def transition(self, status, *, step):  # pylint: disable=redefined-outer-name
        if not isinstance(status, Status):
            status = Status[status]
        if status == Status.unknown:
            raise StrategyError(f"can not transition to {status}")
        if status == self.status:
            step.skip("nothing to do")
            return
        if status == Status.off:
            self.target.deactivate(self.shell)
            self.target.deactivate(self.console)
            self.target.activate(self.power)
            self.power.off()
        elif status == Status.shell:
            self.transition(Status.off)
            if self.sdmux is not None and self.storage is not None:
                self._flash()
            self.target.activate(self.console)
            started = time.monotonic()
            self.power.on()
            if self.first_output:
                self.first_output_seconds = self._await_first_output(started)
            self.target.activate(self.shell)
            self.boot_seconds = time.monotonic() - started
        self.status = status

    def _await_first_output(self, started):
        """Seconds from `started` to the first container's line, or None when the
        login prompt comes first."""
        index, _before, _match, _after = self.console.expect(
            [re.escape(self.first_output), self.shell.login_prompt],
            timeout=self.shell.login_timeout)
        if index == 0:
            return time.monotonic() - started
        # The login prompt was read here: an empty name makes getty print it again
        # for the ShellDriver.
        self.console.sendline("")
        return None

    def _flash(self):
        image = self.target.env.config.get_image_path(self.flash_image)
        # Yocto's wic.bz2 comes with a .bmap: bmaptool writes only the used
        # blocks (and decompresses); a plain .wic is written with dd.
        mode = Mode.BMAPTOOL if image.endswith((".bz2", ".gz", ".xz", ".zst")) else Mode.DD
        self.target.activate(self.sdmux)
        self.sdmux.set_mode("host")
        self.target.activate(self.storage)
        self.storage.write_image(image, mode=mode)
        self.target.deactivate(self.storage)
        self.sdmux.set_mode("dut")


# labgrid executes an env file's `imports:` anew for every Environment: the
# class is registered once (by name, which is how env files refer to it).
if "SlrStrategy" not in target_factory.all_classes:
    target_factory.reg_driver(SlrStrategy)
