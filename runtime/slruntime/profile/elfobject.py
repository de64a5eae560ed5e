"""What the analysis needs to know about one ELF file, read from an untrusted image.

An ElfObject holds: the machine, entry point, PT_INTERP, the dynamic section (DT_NEEDED,
RPATH/RUNPATH, init/fini functions), code ranges, symbols (defined functions and data
objects, exports, imports) and every pointer stored in the file's data (from dynamic
relocations, and for position-dependent executables from scanning the data words).

The file is read by its parts, never whole: the headers, the tables the analysis uses
(symbols, relocations, the dynamic section, string tables), each checked to lie inside
the file and below a size limit before it is read, and the contents of the loadable
segments (each byte of the file at most once). Section and code ranges are clipped to
what the segments map from the file. A sparse file of any apparent size, headers
pointing past its end, or counts that would take hours to walk end as NotAnElf.
"""

import bisect
import os
import re
import struct

from slruntime.profile import safeio
from slruntime.profile.syscalls import ARCHES


class NotAnElf(Exception):
    """The file is not an ELF object this tool can analyse."""


# Bytes of loadable segment contents read from one file (libpython3.11: 7 MiB; the
# biggest libraries of a desktop, libLLVM: ~110 MiB).
MAX_LOADED = 256 << 20
# Bytes of one table (a symbol table, relocations, strings).
MAX_TABLE = 64 << 20
_PATH_MAX = 4096

_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")
_RELA = struct.Struct("<QQq")
_REL = struct.Struct("<QQ")
_DYNAMIC = struct.Struct("<qQ")

_MACHINES = {62: "EM_X86_64", 183: "EM_AARCH64", 3: "EM_386", 40: "EM_ARM", 8: "EM_MIPS", 243: "EM_RISCV"}
_ET_EXEC = 2
_PT_LOAD, _PT_INTERP = 1, 3
_PF_X = 1
_PN_XNUM = 0xFFFF
_SHN_XINDEX = 0xFFFF
_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 1, 2, 4
_SHT_SYMTAB, _SHT_STRTAB, _SHT_RELA, _SHT_DYNAMIC, _SHT_NOBITS, _SHT_REL, _SHT_DYNSYM, _SHT_RELR = 2, 3, 4, 6, 8, 9, 11, 19
_STT_OBJECT, _STT_FUNC, _STT_TLS, _STT_GNU_IFUNC = 1, 2, 6, 10
_STB_GLOBAL, _STB_WEAK = 1, 2
_DT_NULL, _DT_NEEDED, _DT_INIT, _DT_FINI, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 0, 1, 12, 13, 14, 15, 29

# Relocation types (x86_64, aarch64) that store "load base + addend": a local pointer.
_RELATIVE = {8, 37, 1027, 1032}            # R_X86_64_RELATIVE, _IRELATIVE, R_AARCH64_RELATIVE, _IRELATIVE
# Relocation types that store a symbol's address (or the symbol's address + addend).
_SYMBOLIC = {1, 6, 7, 257, 1025, 1026}     # X86_64_64, GLOB_DAT, JUMP_SLOT, AARCH64_ABS64, GLOB_DAT, JUMP_SLOT
# Copy relocations: the executable holds a copy of a library's data object.
_COPY = {5, 1024}                          # R_X86_64_COPY, R_AARCH64_COPY

# Allocated sections the dynamic loader and the unwinder read, not the program: their
# words (symbol values, relocation offsets, unwind tables) are not pointers the code can
# follow. Counting them as data made every exported function "pointed to" in a
# position-dependent executable, whose data words are scanned for addresses.
_LOADER_SECTION_TYPES = {7, _SHT_DYNSYM, _SHT_SYMTAB, _SHT_STRTAB, 5, 0x6FFFFFF6,     # NOTE, HASH, GNU_HASH
                         0x6FFFFFFF, 0x6FFFFFFE, 0x6FFFFFFD,                          # GNU versym/verneed/verdef
                         _SHT_RELA, _SHT_REL, _SHT_RELR, _SHT_DYNAMIC}
_LOADER_SECTION_NAMES = (".interp", ".eh_frame", ".eh_frame_hdr", ".gcc_except_table", ".gnu_debuglink")
# NUL-terminated identifiers in read-only data (module names looked up by name at run time).
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_.]{0,63}(?=\x00)")
# Library names spelled out in the data ("libgcc_s.so.1"): what dlopen() may be given.
_LIBRARY_NAME = re.compile(rb"(?<=\x00)([A-Za-z0-9_./+-]*lib[A-Za-z0-9_+.-]*\.so(?:\.[0-9]+)*)\x00")


def _text(raw):
    """A name from the file: bytes that are not UTF-8 kept as surrogates, like os.fsdecode."""
    return raw.decode("utf-8", "surrogateescape")


class _Section:
    def __init__(self, index, fields):
        (self.name_offset, self.type, self.flags, self.addr, self.offset, self.size,
         self.link, self.info, _, self.entsize) = fields
        self.index = index
        self.name = ""


class ElfObject:
    def __init__(self, path, host_path):
        self.path = path                # where it lives inside the rootfs
        self.host_path = host_path      # where this process reads it
        try:
            fd, info = safeio.open_regular(host_path, float("inf"))
        except safeio.RefusedFile as err:
            raise NotAnElf(f"{path}: {err.reason}") from None
        except OSError as err:
            raise NotAnElf(f"{path}: cannot read: {err.strerror}") from None
        self._fd, self._file_size = fd, info.st_size
        try:
            self._read()
        except OSError as err:
            raise NotAnElf(f"{path}: cannot read: {err.strerror}") from None
        finally:
            os.close(fd)
            self._fd = None

    def _bad(self, why):
        return NotAnElf(f"{self.path}: not a valid ELF file ({why})")

    def _bytes(self, offset, size, what, limit=MAX_TABLE):
        """`size` bytes at `offset` of the file, which must hold them all."""
        if size > limit:
            raise NotAnElf(f"{self.path}: {what} is larger than the limit of {limit >> 20} MiB")
        if offset + size > self._file_size:
            raise self._bad(f"{what} beyond the end of the file")
        return safeio.read_at(self._fd, offset, size)

    def _read(self):
        raw = self._bytes(0, 64, "ELF header") if self._file_size >= 64 else b""
        if raw[:4] != b"\x7fELF":
            raise self._bad("no ELF header")
        (ident, e_type, machine, _, self.entry, phoff, shoff, _, _,
         phentsize, phnum, shentsize, shnum, shstrndx) = _HEADER.unpack(raw)
        elfclass, little_endian = {1: 32, 2: 64}.get(ident[4], 0), ident[5] == 1
        number = machine if little_endian else int.from_bytes(machine.to_bytes(2, "little"), "big")
        if number not in ARCHES or elfclass != 64 or not little_endian:
            name = _MACHINES.get(number, str(number))
            raise NotAnElf(f"{self.path}: unsupported machine {name} "
                           f"(ELF{elfclass}{'' if little_endian else ' big-endian'})")
        self.arch = ARCHES[number][0]
        self.position_dependent = e_type == _ET_EXEC
        self.interp = None
        self.needed = []
        self.rpath = []
        self.runpath = []
        self.soname = None
        self.init_functions = []        # DT_INIT, DT_FINI: run by the loader
        self.root_data = []             # (start, end) of init/fini/preinit arrays

        self._read_segments(phoff, phentsize, phnum)
        sections = self._read_section_headers(shoff, shentsize, shnum, shstrndx)

        self.code_ranges = []           # (start, end) of executable sections
        self.data_ranges = []           # (start, end) of allocated, non-executable sections
        self.got_ranges = []            # .got/.got.plt: every slot is its own object
        self._data_sections = []        # (start, end, is_nobits, is_writable) for scanning pointers
        for section in sections:
            if not section.flags & _SHF_ALLOC or section.size == 0:
                continue
            nobits = section.type == _SHT_NOBITS
            mapped = self._mapped(section.addr, section.size, from_file=not nobits)
            if mapped is None:
                continue                # not loaded by the kernel: the program never sees it
            start, end = mapped
            if section.flags & _SHF_EXECINSTR:
                self.code_ranges.append((start, end))
            elif section.type not in _LOADER_SECTION_TYPES and section.name not in _LOADER_SECTION_NAMES:
                self.data_ranges.append((start, end))
                self._data_sections.append((start, end, nobits, bool(section.flags & _SHF_WRITE)))
                if section.name.startswith(".got"):
                    self.got_ranges.append((start, end))
            if section.name in (".init_array", ".fini_array", ".preinit_array"):
                self.root_data.append((start, end))
        if not self.code_ranges:
            # Section headers stripped: fall back to the executable segments.
            self.code_ranges = [(vaddr, vaddr + filesz) for vaddr, _, _, filesz, flags in self._segments
                                if flags & _PF_X and filesz]
        self.code_ranges.sort()
        self.data_ranges.sort()

        self.functions = {}             # address -> name of defined functions
        self.objects = []               # (start, end) of defined data objects with a size
        self.exports = {}               # name -> address, defined global/weak dynamic symbols
        self.imports = set()            # undefined dynamic symbols
        symtab = next((s for s in sections if s.name == ".symtab" and s.type == _SHT_SYMTAB), None)
        dynsym = next((s for s in sections if s.name == ".dynsym" and s.type == _SHT_DYNSYM), None)
        for table in (symtab, dynsym):
            if table is None:
                continue
            for name, kind, bind, defined, value, size in self._symbols(table, sections):
                if table is dynsym and name:
                    if not defined:
                        self.imports.add(name)
                    elif bind in (_STB_GLOBAL, _STB_WEAK) and kind != _STT_TLS:
                        self.exports.setdefault(name, value)
                if not defined or value == 0:
                    continue
                if kind in (_STT_FUNC, _STT_GNU_IFUNC):
                    self.functions.setdefault(value, name)
                elif kind == _STT_OBJECT and size > 0:
                    self.objects.append((value, value + size))
        self.objects.sort()

        self.pointers = {}              # slot address -> address it points to (int) or symbol name (str)
        self.copies = []                # (start, end, name) of copy-relocated data
        self._symbol_lists = {}         # section index -> symbols, for the relocations naming them
        dynamic = next((s for s in sections if s.name == ".dynamic"), None)
        if dynamic is not None and dynamic.type != _SHT_NOBITS:
            self._read_dynamic(dynamic, sections)
        for section in sections:
            if section.type == _SHT_RELR:
                # Packed relative relocations (DT_RELR): the addend is the stored word.
                for offset in self._relr_offsets(section):
                    self.pointers[offset] = struct.unpack("<Q", self.read(offset, 8))[0]
            elif section.type in (_SHT_RELA, _SHT_REL) and section.flags & _SHF_ALLOC:
                self._read_relocations(section, sections)
        if self.position_dependent:
            self._scan_data_words()
        self.library_names = sorted({_text(m) for chunk in self._chunks for m in _LIBRARY_NAME.findall(chunk[1])})

    def _read_segments(self, phoff, phentsize, phnum):
        self._segments = []             # (vaddr, memsz, offset, filesz, flags) of PT_LOAD
        if phnum and phnum == _PN_XNUM or phentsize != _PROGRAM_HEADER.size:
            raise self._bad(f"program header table of {phnum} entries of {phentsize} bytes")
        table = self._bytes(phoff, phnum * phentsize, "program header table") if phnum else b""
        interp = None
        for p_type, flags, offset, vaddr, _, filesz, memsz, _ in _PROGRAM_HEADER.iter_unpack(table):
            if p_type == _PT_LOAD:
                # The kernel maps at most the file's bytes; past them a program faults.
                filesz = max(0, min(filesz, memsz, self._file_size - offset))
                if vaddr + memsz < 1 << 64:
                    self._segments.append((vaddr, memsz, offset, filesz, flags))
            elif p_type == _PT_INTERP and interp is None:
                interp = self._bytes(offset, min(filesz, _PATH_MAX), "PT_INTERP").split(b"\x00")[0]
        if interp:
            self.interp = _text(interp)
        # Each byte of the file read once, however the segments overlap.
        ranges = sorted((offset, offset + filesz) for _, _, offset, filesz, _ in self._segments if filesz)
        merged = []
        for start, end in ranges:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        if sum(end - start for start, end in merged) > MAX_LOADED:
            raise NotAnElf(f"{self.path}: loadable segments larger than the limit of {MAX_LOADED >> 20} MiB")
        self._chunks = [(start, safeio.read_at(self._fd, start, end - start)) for start, end in merged]
        self._chunk_starts = [start for start, _ in self._chunks]

    def _read_section_headers(self, shoff, shentsize, shnum, shstrndx):
        if shoff == 0:
            return []
        if shentsize != _SECTION_HEADER.size:
            raise self._bad(f"section headers of {shentsize} bytes")
        if shnum == 0 or shstrndx == _SHN_XINDEX:
            # More than 0xff00 sections: the real count and index are in section 0.
            first = _SECTION_HEADER.unpack(self._bytes(shoff, _SECTION_HEADER.size, "section header table"))
            shnum = shnum or first[5]
            shstrndx = first[6] if shstrndx == _SHN_XINDEX else shstrndx
        table = self._bytes(shoff, shnum * shentsize, "section header table")
        sections = [_Section(index, fields) for index, fields in enumerate(_SECTION_HEADER.iter_unpack(table))]
        if shstrndx < len(sections) and sections[shstrndx].type == _SHT_STRTAB:
            names = self._contents(sections[shstrndx], "section name table")
            for section in sections:
                section.name = _string(names, section.name_offset)
        return sections

    def _contents(self, section, what):
        if section.type == _SHT_NOBITS:
            return b""
        return self._bytes(section.offset, section.size, what)

    def _linked(self, section, sections, types):
        """The section `section` links to, if it has one of `types`."""
        if 0 < section.link < len(sections) and sections[section.link].type in types:
            return sections[section.link]
        return None

    def _symbols(self, table, sections):
        """(name, type, binding, defined, value, size) of each symbol of a symbol table."""
        if table.entsize != _SYMBOL.size:
            raise self._bad(f"symbol table {table.name} with entries of {table.entsize} bytes")
        data = self._contents(table, table.name)
        strings_section = self._linked(table, sections, (_SHT_STRTAB,))
        strings = self._contents(strings_section, "string table") if strings_section else b""
        usable = len(data) - len(data) % _SYMBOL.size
        for name, info, _, shndx, value, size in _SYMBOL.iter_unpack(data[:usable]):
            yield _string(strings, name), info & 0xF, info >> 4, shndx != 0, value, size

    def _read_dynamic(self, dynamic, sections):
        strings_section = self._linked(dynamic, sections, (_SHT_STRTAB,))
        strings = self._contents(strings_section, "dynamic string table") if strings_section else b""
        data = self._contents(dynamic, ".dynamic")
        for tag, value in _DYNAMIC.iter_unpack(data[:len(data) - len(data) % _DYNAMIC.size]):
            if tag == _DT_NULL:
                break
            if tag == _DT_NEEDED:
                self.needed.append(_string(strings, value))
            elif tag == _DT_RPATH:
                self.rpath = [p for p in _string(strings, value).split(":") if p]
            elif tag == _DT_RUNPATH:
                self.runpath = [p for p in _string(strings, value).split(":") if p]
            elif tag == _DT_SONAME:
                self.soname = _string(strings, value)
            elif tag in (_DT_INIT, _DT_FINI):
                self.init_functions.append(value)

    def _relr_offsets(self, section):
        if section.entsize not in (0, 8):
            raise self._bad(f"RELR section {section.name} with entries of {section.entsize} bytes")
        data = self._contents(section, section.name)
        where = 0
        for (entry,) in struct.iter_unpack("<Q", data[:len(data) - len(data) % 8]):
            if entry & 1 == 0:
                yield entry
                where = entry + 8
            else:
                for bit in range(63):
                    if entry >> (bit + 1) & 1:
                        yield where + 8 * bit
                where += 63 * 8

    def _read_relocations(self, section, sections):
        rela = section.type == _SHT_RELA
        layout = _RELA if rela else _REL
        if section.entsize != layout.size:
            raise self._bad(f"relocation section {section.name} with entries of {section.entsize} bytes")
        data = self._contents(section, section.name)
        symbols_section = self._linked(section, sections, (_SHT_DYNSYM, _SHT_SYMTAB))
        symbols = []
        if symbols_section is not None:
            if symbols_section.index not in self._symbol_lists:
                self._symbol_lists[symbols_section.index] = list(self._symbols(symbols_section, sections))
            symbols = self._symbol_lists[symbols_section.index]
        for fields in layout.iter_unpack(data[:len(data) - len(data) % layout.size]):
            offset, info = fields[0], fields[1]
            kind, index = info & 0xFFFFFFFF, info >> 32
            addend = fields[2] if rela else 0
            if kind in _RELATIVE:
                self.pointers[offset] = addend
            elif (kind in _SYMBOLIC or kind in _COPY) and 0 < index < len(symbols):
                name, _, _, defined, value, size = symbols[index]
                if kind in _COPY:
                    self.copies.append((offset, offset + size, name))
                elif defined and value:
                    self.pointers[offset] = (value + addend) % (1 << 64)
                elif name:
                    self.pointers[offset] = name

    def _mapped(self, address, size, from_file):
        """The part of [address, address + size) that a PT_LOAD segment maps (from the
        file's bytes if `from_file`), or None."""
        for vaddr, memsz, _, filesz, _ in self._segments:
            if vaddr <= address < vaddr + memsz:
                end = min(address + size, vaddr + (filesz if from_file else memsz))
                return (address, end) if end > address else None
        return None

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
        for vaddr, memsz, offset, filesz, _ in self._segments:
            if vaddr <= address < vaddr + memsz:
                start = address - vaddr
                chunk = self._file_bytes(offset + start, min(filesz, start + size) - start) if start < filesz else b""
                return chunk + bytes(size - len(chunk))
        return bytes(size)

    def _file_bytes(self, offset, size):
        index = bisect.bisect_right(self._chunk_starts, offset) - 1
        if index < 0:
            return b""
        chunk_start, data = self._chunks[index]
        return data[offset - chunk_start:offset - chunk_start + size]

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
        self._chunks, self._chunk_starts = [], []


def _string(table, offset):
    """The NUL-terminated string at `offset` of a string table ("" outside it)."""
    if offset >= len(table):
        return ""
    end = table.find(b"\x00", offset)
    return _text(table[offset:end if end >= 0 else len(table)])


def _in_ranges(ranges, address):
    index = bisect.bisect_right(ranges, (address, float("inf"))) - 1
    return index >= 0 and ranges[index][0] <= address < ranges[index][1]
