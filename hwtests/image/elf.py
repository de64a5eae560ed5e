"""Just enough ELF reading (64-bit little-endian: x86_64 and aarch64) to build
an image without running its binaries: a section's bytes, the DT_NEEDED
libraries and the program interpreter."""
import struct

PT_INTERP = 3
PT_DYNAMIC = 2
DT_NEEDED = 1
DT_STRTAB = 5


class NotElf(Exception):
    pass


class Elf:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        if self.data[:4] != b"\x7fELF" or self.data[4] != 2 or self.data[5] != 1:
            raise NotElf(path)
        (self.type, self.machine, _version, _entry, self.phoff, self.shoff, _flags,
         _ehsize, self.phentsize, self.phnum, self.shentsize, self.shnum,
         self.shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", self.data, 16)

    def _sections(self):
        for i in range(self.shnum):
            yield struct.unpack_from("<IIQQQQIIQQ", self.data, self.shoff + i * self.shentsize)

    def _segments(self):
        for i in range(self.phnum):
            yield struct.unpack_from("<IIQQQQQQ", self.data, self.phoff + i * self.phentsize)

    def section(self, name):
        sections = list(self._sections())
        if not sections:
            return None
        names = sections[self.shstrndx]
        for sh in sections:
            start = names[4] + sh[0]
            if self.data[start:self.data.index(b"\0", start)].decode() == name:
                return self.data[sh[4]:sh[4] + sh[5]]
        return None

    def _vaddr_to_offset(self, vaddr):
        for p_type, _flags, offset, p_vaddr, _paddr, filesz, _memsz, _align in self._segments():
            if p_type == 1 and p_vaddr <= vaddr < p_vaddr + filesz:
                return offset + vaddr - p_vaddr
        raise NotElf(f"address {vaddr:#x} outside every LOAD segment")

    def interpreter(self):
        for p_type, _flags, offset, _vaddr, _paddr, filesz, _memsz, _align in self._segments():
            if p_type == PT_INTERP:
                return self.data[offset:offset + filesz].rstrip(b"\0").decode()
        return None

    def needed(self):
        """Sonames from the dynamic section (empty for static binaries)."""
        dynamic = [s for s in self._segments() if s[0] == PT_DYNAMIC]
        if not dynamic:
            return []
        _type, _flags, offset, _vaddr, _paddr, filesz, _memsz, _align = dynamic[0]
        entries = [struct.unpack_from("<qQ", self.data, offset + i)
                   for i in range(0, filesz, 16)]
        strtab = self._vaddr_to_offset(next(v for tag, v in entries if tag == DT_STRTAB))
        names = []
        for tag, value in entries:
            if tag == DT_NEEDED:
                start = strtab + value
                names.append(self.data[start:self.data.index(b"\0", start)].decode())
        return names

    def modinfo(self):
        """The key=value strings of a kernel module's .modinfo section."""
        raw = self.section(".modinfo") or b""
        info = {}
        for item in raw.split(b"\0"):
            key, sep, value = item.decode(errors="replace").partition("=")
            if sep:
                info.setdefault(key, []).append(value)
        return info
