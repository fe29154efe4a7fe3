// SPDX-License-Identifier: GPL-2.0
//! ELF parsing of vDSO images (a live mapping, a `/proc/PID/mem` copy or a file): class and
//! flavour, size, notes, dynamic symbols with versions in `objdump -T` layout.

use std::fmt;

use anyhow::{anyhow, bail, ensure, Context, Result};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader as _, SectionHeader as _, Sym as _};
use object::read::SectionIndex;
use object::Endianness;
use serde::Serialize;

/// ELF header of the ia32 (`EM_386`) and x32 (`EM_X86_64`) vDSOs.
type Ehdr32 = elf::FileHeader32<Endianness>;
/// ELF header of the x86_64 vDSO. Endianness is checked at parse time for both classes.
pub(super) type Ehdr64 = elf::FileHeader64<Endianness>;

/// Evaluates `$body` with the type alias `$h` bound to the ELF header type ([`Ehdr32`] or
/// [`Ehdr64`]) that matches the class of `$data`, so that one generic helper serves both.
/// Returns early with an error if `$data` is not an ELF image of a known class.
macro_rules! with_ehdr {
    ($data:expr, $h:ident => $body:expr) => {
        match ElfClass::of($data)? {
            ElfClass::Elf32 => {
                type $h = Ehdr32;
                $body
            }
            ElfClass::Elf64 => {
                type $h = Ehdr64;
                $body
            }
        }
    };
}

/// The ELF class (`e_ident[EI_CLASS]`) of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElfClass {
    /// `ELFCLASS32`: the ia32 vDSO (`vdso32.so`) and the x32 vDSO (`vdsox32.so`).
    Elf32,
    /// `ELFCLASS64`: the x86_64 vDSO (`vdso64.so`).
    Elf64,
}

impl ElfClass {
    /// Reads the class from the ELF identification at the start of `data`.
    pub fn of(data: &[u8]) -> Result<Self> {
        ensure!(
            data.len() >= std::mem::size_of::<elf::Ident>() && data[..4] == elf::ELFMAG,
            "not an ELF image (no ELF magic)"
        );
        match data[4] {
            elf::ELFCLASS32 => Ok(ElfClass::Elf32),
            elf::ELFCLASS64 => Ok(ElfClass::Elf64),
            other => bail!("unsupported ELF class {other}"),
        }
    }

    /// The class of the header type `H`.
    fn of_header<H: FileHeader>() -> Self {
        if H::is_type_64_sized() {
            ElfClass::Elf64
        } else {
            ElfClass::Elf32
        }
    }

    /// Number of hex digits binutils prints for addresses and sizes of this class
    /// (`bfd_sprintf_vma`): 8 for ELF32, 16 for ELF64.
    pub fn address_digits(self) -> usize {
        match self {
            ElfClass::Elf32 => 8,
            ElfClass::Elf64 => 16,
        }
    }

    /// `value` truncated to the address width of the class, as binutils prints it.
    fn truncate(self, value: u64) -> u64 {
        match self {
            ElfClass::Elf32 => value & 0xffff_ffff,
            ElfClass::Elf64 => value,
        }
    }
}

impl fmt::Display for ElfClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfClass::Elf32 => "ELF32",
            ElfClass::Elf64 => "ELF64",
        })
    }
}

/// The x86 vDSO flavours (`arch/x86/entry/vdso/`), told apart by ELF class and `e_machine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VdsoAbi {
    /// `vdso64.so`: ELF64, `EM_X86_64`, mapped into 64-bit processes.
    X86_64,
    /// `vdso32.so`: ELF32, `EM_386`, mapped into ia32 (compat) processes.
    Ia32,
    /// `vdsox32.so`: ELF32, `EM_X86_64`, mapped into x32 processes.
    X32,
    /// arm64's `vdso.so`: ELF64, `EM_AARCH64`, mapped into 64-bit processes.
    Arm64,
    /// arm64's compat `vdso32.so`: ELF32, `EM_ARM`, mapped into AArch32 processes.
    Arm32,
}

impl VdsoAbi {
    /// Classifies an image from its ELF header (class and `e_machine`).
    pub fn of(data: &[u8]) -> Result<Self> {
        with_ehdr!(data, H => {
            let (ehdr, endian) = parse_ehdr::<H>(data)?;
            Self::from_header(ElfClass::of_header::<H>(), ehdr.e_machine(endian))
        })
    }

    fn from_header(class: ElfClass, machine: u16) -> Result<Self> {
        match (class, machine) {
            (ElfClass::Elf64, elf::EM_X86_64) => Ok(VdsoAbi::X86_64),
            (ElfClass::Elf32, elf::EM_386) => Ok(VdsoAbi::Ia32),
            (ElfClass::Elf32, elf::EM_X86_64) => Ok(VdsoAbi::X32),
            (ElfClass::Elf64, elf::EM_AARCH64) => Ok(VdsoAbi::Arm64),
            (ElfClass::Elf32, elf::EM_ARM) => Ok(VdsoAbi::Arm32),
            (ElfClass::Elf64, m) => {
                bail!("e_machine of the ELF64 image is {m}, not EM_X86_64 or EM_AARCH64")
            }
            (ElfClass::Elf32, m) => bail!(
                "e_machine of the ELF32 image is {m}, not EM_386 (ia32), EM_X86_64 (x32) or \
                 EM_ARM (arm64 compat)"
            ),
        }
    }

    /// The ELF class of this flavour.
    pub fn class(self) -> ElfClass {
        match self {
            VdsoAbi::X86_64 | VdsoAbi::Arm64 => ElfClass::Elf64,
            VdsoAbi::Ia32 | VdsoAbi::X32 | VdsoAbi::Arm32 => ElfClass::Elf32,
        }
    }
}

impl fmt::Display for VdsoAbi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VdsoAbi::X86_64 => "x86_64 (ELF64, EM_X86_64)",
            VdsoAbi::Ia32 => "ia32 (ELF32, EM_386)",
            VdsoAbi::X32 => "x32 (ELF32, EM_X86_64)",
            VdsoAbi::Arm64 => "arm64 (ELF64, EM_AARCH64)",
            VdsoAbi::Arm32 => "arm32 (ELF32, EM_ARM)",
        })
    }
}

/// Parses the ELF header as `H` ([`Ehdr32`] or [`Ehdr64`]); fails if the class differs.
fn parse_ehdr<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<(&H, Endianness)> {
    let class = ElfClass::of_header::<H>();
    let ehdr = H::parse(data).map_err(|e| anyhow!("not an {class} image: {e}"))?;
    let endian = ehdr
        .endian()
        .map_err(|e| anyhow!("bad ELF endianness: {e}"))?;
    Ok((ehdr, endian))
}

/// The program header table of `data`.
fn program_headers<'data, H: FileHeader<Endian = Endianness>>(
    ehdr: &H,
    endian: Endianness,
    data: &'data [u8],
) -> Result<&'data [H::ProgramHeader]> {
    ehdr.program_headers(endian, data)
        .map_err(|e| anyhow!("bad program headers: {e}"))
}

/// Widens an ELF word (`u32` for ELF32, `u64` for ELF64).
fn word(w: impl Into<u64>) -> u64 {
    w.into()
}

/// Size of an ELF image from its own headers: the maximum of the end of the ELF header, the
/// program header table, the section header table (`e_shoff + e_shnum * e_shentsize`) and
/// every `PT_LOAD` segment's file image (`p_offset + p_filesz`). ELF32 and ELF64 images.
///
/// Only the ELF header and the program headers are read, so `data` may be just the first page
/// of a mapping whose length is not known yet.
pub fn elf_image_size(data: &[u8]) -> Result<usize> {
    with_ehdr!(data, H => {
        let (ehdr, endian) = parse_ehdr::<H>(data)?;
        elf_image_size_as::<H>(ehdr, endian, data)
    })
}

fn elf_image_size_as<H: FileHeader<Endian = Endianness>>(
    ehdr: &H,
    endian: Endianness,
    data: &[u8],
) -> Result<usize> {
    let phoff = word(ehdr.e_phoff(endian));
    let phnum = u64::from(ehdr.e_phnum(endian));
    let phentsize = u64::from(ehdr.e_phentsize(endian));
    let shoff = word(ehdr.e_shoff(endian));
    let shnum = u64::from(ehdr.e_shnum(endian));
    let shentsize = u64::from(ehdr.e_shentsize(endian));
    ensure!(
        !(shnum == 0 && shoff != 0),
        "extended section numbering (e_shnum == 0) is not supported"
    );

    let overflow = || anyhow!("ELF header fields overflow");
    let mut end = u64::from(ehdr.e_ehsize(endian));
    end = end.max(
        phnum
            .checked_mul(phentsize)
            .and_then(|n| n.checked_add(phoff))
            .ok_or_else(overflow)?,
    );
    end = end.max(
        shnum
            .checked_mul(shentsize)
            .and_then(|n| n.checked_add(shoff))
            .ok_or_else(overflow)?,
    );
    let phdrs = program_headers(ehdr, endian, data)?;
    for ph in phdrs.iter().filter(|ph| ph.p_type(endian) == elf::PT_LOAD) {
        let seg_end = word(ph.p_offset(endian))
            .checked_add(word(ph.p_filesz(endian)))
            .ok_or_else(overflow)?;
        end = end.max(seg_end);
    }
    usize::try_from(end).context("ELF image size does not fit in usize")
}

/// Checks that `data` is a complete vDSO-style ELF shared object: `ET_DYN`, one of the
/// [`VdsoAbi`] flavours (x86's ELF64 `EM_X86_64`, ELF32 `EM_386` or ELF32 `EM_X86_64`, arm64's
/// ELF64 `EM_AARCH64` or ELF32 `EM_ARM`), exactly
/// [`elf_image_size`] bytes long (or longer), and every section with file contents lies inside
/// it. Returns the flavour.
fn validate_as<H: FileHeader<Endian = Endianness>>(
    ehdr: &H,
    endian: Endianness,
    data: &[u8],
) -> Result<VdsoAbi> {
    let abi = VdsoAbi::from_header(ElfClass::of_header::<H>(), ehdr.e_machine(endian))?;
    ensure!(
        ehdr.e_type(endian) == elf::ET_DYN,
        "e_type is {}, not ET_DYN",
        ehdr.e_type(endian)
    );
    let size = elf_image_size_as::<H>(ehdr, endian, data)?;
    ensure!(
        size <= data.len(),
        "image is truncated: headers describe {size} bytes, have {}",
        data.len()
    );
    let sections = ehdr
        .sections(endian, data)
        .map_err(|e| anyhow!("bad section headers: {e}"))?;
    for (index, sh) in sections.enumerate() {
        if sh.sh_type(endian) == elf::SHT_NOBITS {
            continue;
        }
        let end = word(sh.sh_offset(endian)).checked_add(word(sh.sh_size(endian)));
        ensure!(
            end.is_some_and(|end| end <= size as u64),
            "section {} extends beyond the {size}-byte image",
            index.0
        );
    }
    Ok(abi)
}

/// Iterates over the ELF notes of `data`, via `PT_NOTE` segments if there are any, otherwise
/// via `SHT_NOTE` sections. Calls `f(name, type, desc)` until it returns `Some`.
fn find_note_as<'data, H: FileHeader<Endian = Endianness>, T>(
    ehdr: &H,
    endian: Endianness,
    data: &'data [u8],
    mut f: impl FnMut(&'data [u8], u32, &'data [u8]) -> Option<T>,
) -> Result<Option<T>> {
    let phdrs = program_headers(ehdr, endian, data)?;
    let mut saw_pt_note = false;
    for ph in phdrs {
        let Some(mut notes) = ph
            .notes(endian, data)
            .map_err(|e| anyhow!("bad PT_NOTE segment: {e}"))?
        else {
            continue;
        };
        saw_pt_note = true;
        while let Some(note) = notes.next().map_err(|e| anyhow!("bad note: {e}"))? {
            if let Some(v) = f(note.name(), note.n_type(endian), note.desc()) {
                return Ok(Some(v));
            }
        }
    }
    if saw_pt_note {
        return Ok(None);
    }
    let sections = ehdr
        .sections(endian, data)
        .map_err(|e| anyhow!("bad section headers: {e}"))?;
    for sh in sections.iter() {
        let Some(mut notes) = sh
            .notes(endian, data)
            .map_err(|e| anyhow!("bad SHT_NOTE section: {e}"))?
        else {
            continue;
        };
        while let Some(note) = notes.next().map_err(|e| anyhow!("bad note: {e}"))? {
            if let Some(v) = f(note.name(), note.n_type(endian), note.desc()) {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// Formats a `LINUX_VERSION_CODE` as `major.minor.patch`.
pub fn format_version_code(code: u32) -> String {
    format!("{}.{}.{}", code >> 16, (code >> 8) & 0xff, code & 0xff)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Version information of a dynamic symbol, as GNU tools present it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum SymbolVersion {
    /// The file has no `.gnu.version` table.
    Unversioned,
    /// `VER_NDX_LOCAL` (0).
    Local,
    /// `VER_NDX_GLOBAL` (1): the base version, printed as `Base`.
    Base,
    /// A named version from `.gnu.version_d` / `.gnu.version_r`.
    Named(String),
}

/// One entry of the dynamic symbol table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DynamicSymbol {
    /// Index in `.dynsym`.
    pub index: usize,
    /// Symbol name.
    pub name: String,
    /// `st_value` (link-time address; add the load bias for the runtime address).
    pub value: u64,
    /// `st_size`.
    pub size: u64,
    /// `ELF_ST_BIND(st_info)`.
    pub bind: u8,
    /// `ELF_ST_TYPE(st_info)`.
    pub kind: u8,
    /// Section name, or `*ABS*`, `*UND*`, `*COM*` for the special indices.
    pub section: String,
    /// True if the section index is `SHN_UNDEF`.
    pub undefined: bool,
    /// Version.
    pub version: SymbolVersion,
    /// The version is printed in parentheses by `objdump -T`: `VERSYM_HIDDEN` is set (a
    /// non-default version, `name@VERSION` rather than `@@`), or the version is a requirement
    /// from `.gnu.version_r` (binutils `_bfd_elf_get_symbol_version_string` marks those hidden).
    pub hidden: bool,
    /// `VERSYM_HIDDEN` itself is set: a non-default version of a defined symbol.
    pub versym_hidden: bool,
    /// `st_other`: the visibility (`STV_*`) in its low two bits.
    pub other: u8,
    /// Class of the image the symbol was read from; sets the width of the value and size
    /// columns of [`DynamicSymbol::objdump_line`].
    pub class: ElfClass,
}

impl DynamicSymbol {
    /// The seven flag characters of `objdump -T` (binutils `bfd_print_symbol_vandf`, with the
    /// `BSF_*` flags `elf_slurp_symbol_table` derives from the ELF symbol), e.g. `g    DF` for
    /// a global function, ` w   DF` for a weak one, `      D ` for an undefined global.
    pub fn objdump_flags(&self) -> String {
        let bind = match self.bind {
            elf::STB_LOCAL => 'l',
            // BSF_GLOBAL is only set for defined, non-common global symbols.
            elf::STB_GLOBAL if !self.undefined && self.section != "*COM*" => 'g',
            elf::STB_GNU_UNIQUE => 'u',
            _ => ' ',
        };
        let weak = if self.bind == elf::STB_WEAK { 'w' } else { ' ' };
        let indirect = if self.kind == elf::STT_GNU_IFUNC {
            'i'
        } else {
            ' '
        };
        let debug = if matches!(self.kind, elf::STT_SECTION | elf::STT_FILE) {
            'd'
        } else {
            'D'
        };
        // STT_TLS (BSF_THREAD_LOCAL) and STT_GNU_IFUNC (BSF_GNU_INDIRECT_FUNCTION) get no
        // type letter.
        let kind = match self.kind {
            elf::STT_FUNC => 'F',
            elf::STT_FILE => 'f',
            elf::STT_OBJECT | elf::STT_COMMON => 'O',
            _ => ' ',
        };
        [bind, weak, ' ', ' ', indirect, debug, kind]
            .into_iter()
            .collect()
    }

    /// The version column as `objdump -T` prints it (without padding), `None` when the file
    /// has no version table. Hidden versions are parenthesised.
    pub fn objdump_version(&self) -> Option<String> {
        let name = match &self.version {
            SymbolVersion::Unversioned => return None,
            SymbolVersion::Local => String::new(),
            SymbolVersion::Base => "Base".to_string(),
            SymbolVersion::Named(n) => n.clone(),
        };
        Some(if self.hidden {
            format!("({name})")
        } else {
            name
        })
    }

    /// The `st_other` column of `objdump -T`: ` .internal`, ` .hidden`, ` .protected`, or
    /// ` 0x..` for any other non-zero value; empty for 0 (default visibility).
    pub fn objdump_other(&self) -> String {
        match self.other {
            0 => String::new(),
            elf::STV_INTERNAL => " .internal".to_string(),
            elf::STV_HIDDEN => " .hidden".to_string(),
            elf::STV_PROTECTED => " .protected".to_string(),
            other => format!(" 0x{other:02x}"),
        }
    }

    /// One line in the exact layout of `objdump -T` (binutils 2.40 `bfd_elf_print_symbol`):
    /// value, flags, section, TAB, size, version column, `st_other`, name. Value and size have
    /// 16 hex digits for an ELF64 image and 8 for an ELF32 one (`bfd_fprintf_vma`). For a
    /// common symbol BFD's value is the size and the second column the alignment (`st_value`).
    pub fn objdump_line(&self) -> String {
        let width = self.class.address_digits();
        let (value, size) = if self.section == "*COM*" {
            (self.size, self.value)
        } else {
            (self.value, self.size)
        };
        let mut line = format!(
            "{:0width$x} {} {}\t{:0width$x}",
            self.class.truncate(value),
            self.objdump_flags(),
            self.section,
            self.class.truncate(size)
        );
        match self.objdump_version() {
            None => {}
            Some(v) if self.hidden => {
                line.push(' ');
                line.push_str(&v);
                let name_len = v.len().saturating_sub(2);
                line.extend(std::iter::repeat_n(' ', 10usize.saturating_sub(name_len)));
            }
            Some(v) => line.push_str(&format!("  {v:<11}")),
        }
        line.push_str(&self.objdump_other());
        line.push(' ');
        line.push_str(&self.name);
        line
    }

    /// True if this symbol is a defined function or object with global or weak binding,
    /// i.e. something a dynamic linker would bind to.
    pub fn is_exported(&self) -> bool {
        !self.undefined
            && matches!(self.bind, elf::STB_GLOBAL | elf::STB_WEAK)
            && matches!(self.kind, elf::STT_FUNC | elf::STT_OBJECT | elf::STT_NOTYPE)
    }

    /// True if this symbol has version `version` (a named version).
    pub fn has_version(&self, version: &str) -> bool {
        matches!(&self.version, SymbolVersion::Named(v) if v == version)
    }
}

/// Lists `.dynsym` (without the null entry at index 0) with versions from `.gnu.version`,
/// `.gnu.version_d` and `.gnu.version_r`, in table order, as `objdump -T` does, for any ELF
/// file (`vdso-syms FILE`); a vDSO image is better parsed once with [`ElfImage::parse`].
pub fn dynamic_symbols(data: &[u8]) -> Result<Vec<DynamicSymbol>> {
    with_ehdr!(data, H => {
        let (ehdr, endian) = parse_ehdr::<H>(data)?;
        dynamic_symbols_as::<H>(ehdr, endian, data)
    })
}

fn dynamic_symbols_as<H: FileHeader<Endian = Endianness>>(
    ehdr: &H,
    endian: Endianness,
    data: &[u8],
) -> Result<Vec<DynamicSymbol>> {
    let class = ElfClass::of_header::<H>();
    let sections = ehdr
        .sections(endian, data)
        .map_err(|e| anyhow!("bad section headers: {e}"))?;
    let symbols = sections
        .symbols(endian, data, elf::SHT_DYNSYM)
        .map_err(|e| anyhow!("bad .dynsym: {e}"))?;
    ensure!(
        !symbols.is_empty(),
        "not a dynamic object (no SHT_DYNSYM section)"
    );
    let versions = sections
        .versions(endian, data)
        .map_err(|e| anyhow!("bad version tables: {e}"))?;
    let verdefs = sections
        .gnu_verdef(endian, data)
        .map_err(|e| anyhow!("bad .gnu.version_d: {e}"))?;
    let has_verneed = sections
        .gnu_verneed(endian, data)
        .map_err(|e| anyhow!("bad .gnu.version_r: {e}"))?
        .is_some();
    // binutils prints a version column only when there is a `.gnu.version` and a
    // `.gnu.version_d` or `.gnu.version_r` to name the versions.
    let versions = versions.filter(|_| verdefs.is_some() || has_verneed);
    // Index 1 (VER_NDX_GLOBAL) is `Base` unless the verdef of index 1 has flags other than
    // exactly VER_FLG_BASE: then binutils prints that definition's name.
    let mut global_name = None;
    if let Some((mut defs, link)) = verdefs {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| anyhow!("bad .gnu.version_d strings: {e}"))?;
        while let Some((def, mut aux)) = defs
            .next()
            .map_err(|e| anyhow!("bad .gnu.version_d: {e}"))?
        {
            if def.vd_ndx.get(endian) & elf::VERSYM_VERSION != elf::VER_NDX_GLOBAL {
                continue;
            }
            if def.vd_flags.get(endian) != elf::VER_FLG_BASE {
                if let Some(a) = aux.next().map_err(|e| anyhow!("bad verdaux: {e}"))? {
                    let name = a
                        .name(endian, strings)
                        .map_err(|e| anyhow!("bad verdaux name: {e}"))?;
                    global_name = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            break;
        }
    }

    let mut out = Vec::with_capacity(symbols.len());
    for (index, sym) in symbols.enumerate().skip(1) {
        let name = symbols
            .symbol_name(endian, sym)
            .map_err(|e| anyhow!("bad name of symbol {}: {e}", index.0))?;
        let shndx = sym.st_shndx(endian);
        let section = match shndx {
            elf::SHN_UNDEF => "*UND*".to_string(),
            elf::SHN_ABS => "*ABS*".to_string(),
            elf::SHN_COMMON => "*COM*".to_string(),
            _ => match symbols
                .symbol_section(endian, sym, index)
                .map_err(|e| anyhow!("bad section of symbol {}: {e}", index.0))?
            {
                Some(SectionIndex(i)) => {
                    let sh = sections
                        .section(SectionIndex(i))
                        .map_err(|e| anyhow!("symbol {}: {e}", index.0))?;
                    String::from_utf8_lossy(
                        sections
                            .section_name(endian, sh)
                            .map_err(|e| anyhow!("bad section name: {e}"))?,
                    )
                    .into_owned()
                }
                None => format!("*{shndx:#x}*"),
            },
        };
        let (version, hidden, versym_hidden) = match &versions {
            None => (SymbolVersion::Unversioned, false, false),
            Some(table) => {
                let vi = table.version_index(endian, index);
                let (version, verneed) = if vi.is_local() {
                    (SymbolVersion::Local, false)
                } else if vi.is_global() {
                    match &global_name {
                        Some(n) => (SymbolVersion::Named(n.clone()), false),
                        None => (SymbolVersion::Base, false),
                    }
                } else {
                    match table.version(vi) {
                        Ok(Some(v)) => (
                            SymbolVersion::Named(String::from_utf8_lossy(v.name()).into_owned()),
                            v.file().is_some(),
                        ),
                        // An index neither table defines: what binutils prints for it.
                        _ => (SymbolVersion::Named("<corrupt>".to_string()), false),
                    }
                };
                (version, vi.is_hidden() || verneed, vi.is_hidden())
            }
        };
        out.push(DynamicSymbol {
            index: index.0,
            name: String::from_utf8_lossy(name).into_owned(),
            value: word(sym.st_value(endian)),
            size: word(sym.st_size(endian)),
            bind: sym.st_bind(),
            kind: sym.st_type(),
            section,
            undefined: shndx == elf::SHN_UNDEF,
            version,
            hidden,
            versym_hidden,
            other: sym.st_other(),
            class,
        });
    }
    Ok(out)
}

/// A `PT_LOAD` segment: what resolving a symbol to an address needs of it.
#[derive(Debug, Clone, Copy)]
struct Load {
    offset: u64,
    vaddr: u64,
    filesz: u64,
    exec: bool,
}

/// One entry of an x86 vDSO's `.altinstructions` (`struct alt_instr`,
/// arch/x86/include/asm/alternative.h): `len` bytes at image offset `offset` that the kernel
/// rewrites at boot when the CPU has the feature (`apply_alternatives`, called for each vDSO
/// image by `init_vdso_image`). A live vDSO differs from the file the kernel build made exactly
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AltSite {
    /// Offset of the original instructions in the image (the vDSO is linked at 0, so this is
    /// both the address and the file offset).
    pub offset: u64,
    /// `instrlen`: bytes that may be rewritten.
    pub len: u8,
    /// `replacementlen`: bytes of the replacement (the rest becomes NOPs).
    pub replacement_len: u8,
    /// `ft_flags`: the X86_FEATURE_* word and bit (`cpuid`, low 16 bits) and the `ALT_FLAG_*`
    /// bits (high 16).
    pub ft_flags: u32,
}

impl AltSite {
    /// Whether image offset `at` lies in the bytes this site may rewrite.
    pub fn covers(&self, at: u64) -> bool {
        (self.offset..self.offset + u64::from(self.len)).contains(&at)
    }
}

/// `sizeof(struct alt_instr)`: `s32 instr_offset, s32 repl_offset, u32 ft_flags, u8 instrlen,
/// u8 replacementlen`, packed.
const ALT_INSTR_SIZE: usize = 14;

/// The alternative-instruction sites of a vDSO image (`.altinstructions`), in table order;
/// empty if it has none. Parsed only when asked for, so that a malformed table does not make
/// the image unreadable for anything else.
pub fn alternative_sites(data: &[u8]) -> Result<Vec<AltSite>> {
    with_ehdr!(data, H => {
        let (ehdr, endian) = parse_ehdr::<H>(data)?;
        alternatives_as::<H>(ehdr, endian, data)
    })
}

fn alternatives_as<H: FileHeader<Endian = Endianness>>(
    ehdr: &H,
    endian: Endianness,
    data: &[u8],
) -> Result<Vec<AltSite>> {
    let sections = ehdr
        .sections(endian, data)
        .map_err(|e| anyhow!("bad section headers: {e}"))?;
    let Some((_, sh)) = sections.section_by_name(endian, b".altinstructions") else {
        return Ok(Vec::new());
    };
    let table = sh
        .data(endian, data)
        .map_err(|e| anyhow!("bad .altinstructions: {e}"))?;
    ensure!(
        table.len() % ALT_INSTR_SIZE == 0,
        ".altinstructions is {} bytes, not a multiple of {ALT_INSTR_SIZE}",
        table.len()
    );
    // The section's file offset, which `sh.data` bounded: the vDSO is linked at 0, so it is
    // also the address that instr_offset is relative to (vdso2c and apply_alternatives use
    // the offset too).
    let base = word(sh.sh_offset(endian));
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    table
        .chunks_exact(ALT_INSTR_SIZE)
        .enumerate()
        .map(|(i, e)| {
            // instr_offset is relative to the entry's own first field.
            let rel = i64::from(le32(&e[0..4]) as i32);
            let offset = base
                .checked_add((i * ALT_INSTR_SIZE) as u64)
                .and_then(|entry| entry.checked_add_signed(rel))
                .filter(|&o| o.saturating_add(u64::from(e[12])) <= data.len() as u64)
                .with_context(|| format!(".altinstructions entry {i} points outside the image"))?;
            Ok(AltSite {
                offset,
                len: e[12],
                replacement_len: e[13],
                ft_flags: le32(&e[8..12]),
            })
        })
        .collect()
}

/// How a live vDSO image differs from the file a kernel build made ([`compare_with_build`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildDiff {
    /// Sizes of the live image and of the build's; when they differ, nothing else is compared.
    pub live_size: usize,
    pub built_size: usize,
    /// Entries of the build's `.altinstructions` (an `ALTERNATIVE_2` makes two for one site).
    pub entries: usize,
    /// Distinct sites (instruction offsets) among them.
    pub sites: usize,
    /// The sites whose bytes differ: rewritten at boot. Each with the build's and the live
    /// bytes (JSON: hex strings).
    pub patched: Vec<PatchedSite>,
    /// Differing bytes outside every alternative site, as `(offset, build byte, live byte)`:
    /// not the image this kernel was built with (empty when it is).
    pub unexplained: Vec<(u64, u8, u8)>,
}

/// One alternative site rewritten at boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchedSite {
    /// Image offset of the site.
    pub offset: u64,
    /// The longest `instrlen` of its entries.
    pub len: u8,
    /// The `ft_flags` of each of its entries, in table order (the kernel applies the last
    /// whose feature the CPU has).
    pub ft_flags: Vec<u32>,
    /// Its bytes in the build's file.
    #[serde(serialize_with = "hex_json")]
    pub built: Vec<u8>,
    /// Its bytes in the live image.
    #[serde(serialize_with = "hex_json")]
    pub live: Vec<u8>,
}

fn hex_json<S: serde::Serializer>(b: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(b))
}

/// Compares a live vDSO image with the stripped image a kernel build made
/// (`arch/x86/entry/vdso/vdso64/vdso64.so`, `vdso32/vdso32.so`; vdso2c embeds them byte for
/// byte): every difference must lie in one of the build's alternative sites. An error if
/// `built` is not a vDSO image.
pub fn compare_with_build(live: &[u8], built: &[u8]) -> Result<BuildDiff> {
    ElfImage::parse(built).context("the build's image")?;
    let sites = alternative_sites(built).context("the build's image")?;
    let mut offsets: Vec<u64> = sites.iter().map(|s| s.offset).collect();
    offsets.sort_unstable();
    offsets.dedup();
    let mut diff = BuildDiff {
        live_size: live.len(),
        built_size: built.len(),
        entries: sites.len(),
        sites: offsets.len(),
        patched: Vec::new(),
        unexplained: Vec::new(),
    };
    if live.len() != built.len() {
        return Ok(diff);
    }
    for offset in offsets {
        let here: Vec<&AltSite> = sites.iter().filter(|s| s.offset == offset).collect();
        let len = here.iter().map(|s| s.len).max().unwrap_or(0);
        let r = offset as usize..(offset as usize + usize::from(len)).min(live.len());
        if live[r.clone()] != built[r.clone()] {
            diff.patched.push(PatchedSite {
                offset,
                len,
                ft_flags: here.iter().map(|s| s.ft_flags).collect(),
                built: built[r.clone()].to_vec(),
                live: live[r].to_vec(),
            });
        }
    }
    diff.unexplained = (0..live.len())
        .filter(|&i| live[i] != built[i] && !sites.iter().any(|s| s.covers(i as u64)))
        .map(|i| (i as u64, built[i], live[i]))
        .collect();
    Ok(diff)
}

impl BuildDiff {
    /// Whether the live image is the build's, but for alternatives rewritten at boot.
    pub fn is_the_build(&self) -> bool {
        self.live_size == self.built_size && self.unexplained.is_empty()
    }
}

/// A vDSO image parsed once: [`ElfImage::parse`] validates it and reads its flavour, size,
/// notes, load segments and dynamic symbols; every later question is answered from those.
/// ELF32 and ELF64 images alike.
#[derive(Debug, Clone)]
pub struct ElfImage {
    abi: VdsoAbi,
    loads: Vec<Load>,
    build_id: Option<Vec<u8>>,
    linux_version_code: Option<u32>,
    symbols: Vec<DynamicSymbol>,
}

impl ElfImage {
    /// Validates `data` (`ET_DYN`, an x86 [`VdsoAbi`] flavour, at least [`elf_image_size`]
    /// bytes, every section inside the image) and parses it.
    pub fn parse(data: &[u8]) -> Result<Self> {
        with_ehdr!(data, H => {
            let (ehdr, endian) = parse_ehdr::<H>(data)?;
            Self::parse_as::<H>(ehdr, endian, data)
        })
    }

    fn parse_as<H: FileHeader<Endian = Endianness>>(
        ehdr: &H,
        endian: Endianness,
        data: &[u8],
    ) -> Result<Self> {
        let abi = validate_as::<H>(ehdr, endian, data)?;
        let loads = program_headers(ehdr, endian, data)?
            .iter()
            .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
            .map(|ph| Load {
                offset: word(ph.p_offset(endian)),
                vaddr: word(ph.p_vaddr(endian)),
                filesz: word(ph.p_filesz(endian)),
                exec: ph.p_flags(endian) & elf::PF_X != 0,
            })
            .collect();
        let build_id = find_note_as::<H, _>(ehdr, endian, data, |name, ty, desc| {
            (name == elf::ELF_NOTE_GNU && ty == elf::NT_GNU_BUILD_ID).then(|| desc.to_vec())
        })?;
        // `ELFNOTE32("Linux", 0, LINUX_VERSION_CODE)` in `arch/x86/entry/vdso/vdso-note.S`.
        let linux_version_code = find_note_as::<H, _>(ehdr, endian, data, |name, ty, desc| {
            (name == b"Linux" && ty == 0 && desc.len() == 4)
                .then(|| u32::from_le_bytes([desc[0], desc[1], desc[2], desc[3]]))
        })?;
        let symbols = dynamic_symbols_as::<H>(ehdr, endian, data)?;
        Ok(ElfImage {
            abi,
            loads,
            build_id,
            linux_version_code,
            symbols,
        })
    }

    /// Which vDSO this is: x86_64 (ELF64), ia32 or x32 (ELF32); arm64 (ELF64) or its compat one.
    pub fn abi(&self) -> VdsoAbi {
        self.abi
    }

    /// The GNU build-id (`NT_GNU_BUILD_ID` note, owner `GNU`), if present.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    /// `LINUX_VERSION_CODE` from the vDSO's `Linux` note of type 0, if present.
    pub fn linux_version_code(&self) -> Option<u32> {
        self.linux_version_code
    }

    /// `.dynsym` in table order, as `objdump -T` lists it.
    pub fn symbols(&self) -> &[DynamicSymbol] {
        &self.symbols
    }

    /// The exported symbol `name` with version `version`, preferring the default (non-hidden)
    /// version, as the kernel's `tools/testing/selftests/vDSO/parse_vdso.c` does.
    pub fn find_symbol(&self, name: &str, version: &str) -> Result<&DynamicSymbol> {
        self.symbols
            .iter()
            .filter(|s| s.name == name && s.has_version(version) && s.is_exported())
            .min_by_key(|s| s.hidden)
            .ok_or_else(|| anyhow!("symbol {name}@{version} not found in the vDSO"))
    }

    /// Load bias of the image mapped at `base`: the value to add (wrapping) to `st_value`. For
    /// the vDSO this is `base + p_offset - p_vaddr` of its (single) `PT_LOAD` segment.
    pub fn load_bias(&self, base: u64) -> Result<u64> {
        let load = self.loads.first().context("no PT_LOAD segment")?;
        Ok(base.wrapping_add(load.offset).wrapping_sub(load.vaddr))
    }

    /// Checks that `[value, value + size)` lies in the file image of an executable `PT_LOAD`
    /// segment, so that `bias + value` is code inside the mapping.
    pub fn check_in_exec_segment(&self, value: u64, size: u64) -> Result<()> {
        let end = value.checked_add(size.max(1)).context("symbol overflows")?;
        let ok = self.loads.iter().any(|l| {
            l.exec
                && value >= l.vaddr
                && l.vaddr
                    .checked_add(l.filesz)
                    .is_some_and(|seg_end| end <= seg_end)
        });
        ensure!(
            ok,
            "[{value:#x}, {end:#x}) is not inside an executable PT_LOAD segment"
        );
        Ok(())
    }
}
