"""What the analysis needs to know about one ELF file, read with pyelftools.

An ElfObject holds: the machine, entry point, PT_INTERP, the dynamic section (DT_NEEDED,
RPATH/RUNPATH, init/fini functions), code ranges, symbols (defined functions and data
objects, exports, imports) and every pointer stored in the file's data (from dynamic
relocations, and for position-dependent executables from scanning the data words).
"""

import bisect
import re
import struct

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection, RelrRelocationSection

from slruntime.profile.syscalls import ARCHES


class NotAnElf(Exception):
    """The file is not an ELF object this tool can analyse."""


# Relocation types (x86_64, aarch64) that store "load base + addend": a local pointer.
_RELATIVE = {8, 37, 1027, 1032}            # R_X86_64_RELATIVE, _IRELATIVE, R_AARCH64_RELATIVE, _IRELATIVE
# Relocation types that store a symbol's address (or the symbol's address + addend).
_SYMBOLIC = {1, 6, 7, 257, 1025, 1026}     # X86_64_64, GLOB_DAT, JUMP_SLOT, AARCH64_ABS64, GLOB_DAT, JUMP_SLOT
# Copy relocations: the executable holds a copy of a library's data object.
_COPY = {5, 1024}                          # R_X86_64_COPY, R_AARCH64_COPY

_FUNC_TYPES = ("STT_FUNC", "STT_GNU_IFUNC")
_PF_X = 1
# Allocated sections the dynamic loader and the unwinder read, not the program: their
# words (symbol values, relocation offsets, unwind tables) are not pointers the code can
# follow. Counting them as data made every exported function "pointed to" in a
# position-dependent executable, whose data words are scanned for addresses.
_LOADER_SECTION_TYPES = ("SHT_NOTE", "SHT_DYNSYM", "SHT_SYMTAB", "SHT_STRTAB", "SHT_HASH", "SHT_GNU_HASH",
                         "SHT_GNU_versym", "SHT_GNU_verneed", "SHT_GNU_verdef", "SHT_RELA", "SHT_REL",
                         "SHT_RELR", "SHT_DYNAMIC")
_LOADER_SECTION_NAMES = (".interp", ".eh_frame", ".eh_frame_hdr", ".gcc_except_table", ".gnu_debuglink")
# NUL-terminated identifiers in read-only data (module names looked up by name at run time).
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_.]{0,63}(?=\x00)")


class ElfObject:
    def __init__(self, path, host_path):
        self.path = path                # where it lives inside the rootfs
        self.host_path = host_path      # where this process reads it
        try:
            with open(host_path, "rb") as stream:
                self._read(ELFFile(stream))
        except ELFError as err:
            raise NotAnElf(f"{path}: not a valid ELF file ({err})") from None

    def _read(self, elf):
        machine = elf.header["e_machine"]
        number = {"EM_X86_64": 62, "EM_AARCH64": 183}.get(machine)
        if number is None or elf.elfclass != 64 or not elf.little_endian:
            raise NotAnElf(f"{self.path}: unsupported machine {machine} (ELF{elf.elfclass})")
        self.arch = ARCHES[number][0]
        self.type = elf.header["e_type"]            # ET_EXEC, ET_DYN, ...
        self.entry = elf.header["e_entry"]
        self.position_dependent = self.type == "ET_EXEC"
        self.interp = None
        self.needed = []
        self.rpath = []
        self.runpath = []
        self.soname = None
        self.init_functions = []        # DT_INIT, DT_FINI: run by the loader
        self.root_data = []             # (start, end) of init/fini/preinit arrays

        self._segments = []             # (vaddr, memsz, offset, filesz) of PT_LOAD
        exec_segments = []
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                self._segments.append((seg["p_vaddr"], seg["p_memsz"], seg["p_offset"], seg["p_filesz"]))
                if seg["p_flags"] & _PF_X:
                    exec_segments.append((seg["p_vaddr"], seg["p_vaddr"] + seg["p_filesz"]))
            elif seg["p_type"] == "PT_INTERP":
                self.interp = seg.get_interp_name()
        with open(self.host_path, "rb") as stream:
            self._image = stream.read()

        self.code_ranges = []           # (start, end) of executable sections
        self.data_ranges = []           # (start, end) of allocated, non-executable sections
        self.got_ranges = []            # .got/.got.plt: every slot is its own object
        self._data_sections = []        # (start, end, is_nobits, is_writable) for scanning pointers
        for section in elf.iter_sections():
            flags, start = section["sh_flags"], section["sh_addr"]
            if not flags & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
                continue
            end = start + section["sh_size"]
            if flags & SH_FLAGS.SHF_EXECINSTR:
                self.code_ranges.append((start, end))
            elif section["sh_type"] not in _LOADER_SECTION_TYPES and section.name not in _LOADER_SECTION_NAMES:
                self.data_ranges.append((start, end))
                self._data_sections.append((start, end, section["sh_type"] == "SHT_NOBITS",
                                            bool(flags & SH_FLAGS.SHF_WRITE)))
                if section.name.startswith(".got"):
                    self.got_ranges.append((start, end))
            if section.name in (".init_array", ".fini_array", ".preinit_array"):
                self.root_data.append((start, end))
        if not self.code_ranges:
            # Section headers stripped: fall back to the executable segments.
            self.code_ranges = exec_segments
        self.code_ranges.sort()
        self.data_ranges.sort()

        self.functions = {}             # address -> name of defined functions
        self.objects = []               # (start, end) of defined data objects with a size
        self.exports = {}               # name -> address, defined global/weak dynamic symbols
        self.imports = set()            # undefined dynamic symbols
        symtab = elf.get_section_by_name(".symtab")
        dynsym = elf.get_section_by_name(".dynsym")
        for table in (symtab, dynsym):
            if table is None:
                continue
            for sym in table.iter_symbols():
                kind, value = sym["st_info"]["type"], sym["st_value"]
                defined = sym["st_shndx"] != "SHN_UNDEF"
                if table is dynsym and sym.name:
                    if not defined:
                        self.imports.add(sym.name)
                    elif sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK") and kind != "STT_TLS":
                        self.exports.setdefault(sym.name, value)
                if not defined or value == 0:
                    continue
                if kind in _FUNC_TYPES:
                    self.functions.setdefault(value, sym.name)
                elif kind == "STT_OBJECT" and sym["st_size"] > 0:
                    self.objects.append((value, value + sym["st_size"]))
        self.objects.sort()

        self.pointers = {}              # slot address -> address it points to (int) or symbol name (str)
        self.copies = []                # (start, end, name) of copy-relocated data
        dynamic = elf.get_section_by_name(".dynamic")
        if dynamic is not None:
            self._read_dynamic(dynamic)
        for section in elf.iter_sections():
            if isinstance(section, RelrRelocationSection):
                # Packed relative relocations (DT_RELR): the addend is the stored word.
                for rel in section.iter_relocations():
                    self.pointers[rel["r_offset"]] = struct.unpack("<Q", self.read(rel["r_offset"], 8))[0]
            elif isinstance(section, RelocationSection) and section["sh_flags"] & SH_FLAGS.SHF_ALLOC:
                self._read_relocations(elf, section)
        if self.position_dependent:
            self._scan_data_words()

    def _read_dynamic(self, dynamic):
        for tag in dynamic.iter_tags():
            name = tag.entry.d_tag
            if name == "DT_NEEDED":
                self.needed.append(tag.needed)
            elif name == "DT_RPATH":
                self.rpath = [p for p in tag.rpath.split(":") if p]
            elif name == "DT_RUNPATH":
                self.runpath = [p for p in tag.runpath.split(":") if p]
            elif name == "DT_SONAME":
                self.soname = tag.soname
            elif name in ("DT_INIT", "DT_FINI"):
                self.init_functions.append(tag.entry.d_val)

    def _read_relocations(self, elf, section):
        symbols = None
        if section["sh_link"]:
            symbols = elf.get_section(section["sh_link"])
        for rel in section.iter_relocations():
            kind, offset = rel["r_info_type"], rel["r_offset"]
            addend = rel["r_addend"] if rel.is_RELA() else 0
            if kind in _RELATIVE:
                self.pointers[offset] = addend
            elif (kind in _SYMBOLIC or kind in _COPY) and symbols is not None and rel["r_info_sym"]:
                sym = symbols.get_symbol(rel["r_info_sym"])
                if kind in _COPY:
                    self.copies.append((offset, offset + sym["st_size"], sym.name))
                elif sym["st_shndx"] != "SHN_UNDEF" and sym["st_value"]:
                    self.pointers[offset] = sym["st_value"] + addend
                elif sym.name:
                    self.pointers[offset] = sym.name

    def _scan_data_words(self):
        # A position-dependent executable stores its own addresses as plain words without
        # relocations: any aligned word that lands in a mapped section counts as a pointer.
        for start, end, nobits, _ in self._data_sections:
            if nobits:
                continue
            data = self.read(start, end - start)
            base = start + (-start % 8)
            skip = base - start
            for index, (value,) in enumerate(struct.iter_unpack("<Q", data[skip:len(data) - (len(data) - skip) % 8])):
                if value and (self.in_code(value) or self.in_data(value)):
                    self.pointers.setdefault(base + 8 * index, value)

    def read(self, address, size):
        """Bytes of the file image at a virtual address (zeros past the file contents)."""
        for vaddr, memsz, offset, filesz in self._segments:
            if vaddr <= address < vaddr + memsz:
                start = address - vaddr
                chunk = self._image[offset + start:offset + min(filesz, start + size)] if start < filesz else b""
                return chunk + bytes(size - len(chunk))
        return bytes(size)

    def identifiers(self, writable):
        """{address: text} of the NUL-terminated identifiers in the read-only (or the
        writable) data sections."""
        found = {}
        for start, end, nobits, is_writable in self._data_sections:
            if nobits or is_writable != writable:
                continue
            for match in _IDENTIFIER.finditer(self.read(start, end - start)):
                found[start + match.start()] = match.group().decode()
        return found

    def in_code(self, address):
        return _in_ranges(self.code_ranges, address)

    def in_data(self, address):
        return _in_ranges(self.data_ranges, address)

    def release_image(self):
        """Drop the file contents once code and data have been analysed."""
        self._image = b""


def _in_ranges(ranges, address):
    index = bisect.bisect_right(ranges, (address, float("inf"))) - 1
    return index >= 0 and ranges[index][0] <= address < ranges[index][1]
