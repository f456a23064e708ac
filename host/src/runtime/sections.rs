//! The top-level custom sections of a component: where a guest declares
//! what it reads ([`READS_SECTION`]), read at load and written by
//! `nri-wasm annotate` and the guest build.

use std::ops::Range;

/// The custom section in which a guest declares what it reads (see
/// `grants::reads`).
pub const READS_SECTION: &str = "nri-wasm:reads";

/// The contents of the top-level custom section `name` of a Wasm binary.
pub fn custom_section<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    sections(bytes)
        .find_map(|section| custom_contents(bytes, &section, name))
        .map(|range| &bytes[range])
}

/// `bytes` with its top-level custom section `name` set to `contents`: any
/// section of that name is dropped and the new one appended. Refuses a
/// binary whose sections do not parse to its end.
pub fn with_custom_section(bytes: &[u8], name: &str, contents: &[u8]) -> Result<Vec<u8>, String> {
    if !bytes.starts_with(b"\0asm") || bytes.len() < 8 {
        return Err("not a Wasm binary".into());
    }
    let mut out = bytes[..8].to_vec();
    let mut end = 8;
    for section in sections(bytes) {
        if custom_contents(bytes, &section, name).is_none() {
            out.extend_from_slice(&bytes[section.whole.clone()]);
        }
        end = section.whole.end;
    }
    if end != bytes.len() {
        return Err(format!("its section at byte {end} does not parse"));
    }
    let custom = wasm_encoder::CustomSection {
        name: name.into(),
        data: contents.into(),
    };
    wasm_encoder::Section::append_to(&custom, &mut out);
    Ok(out)
}

/// A top-level section: its id, where it lies whole in the binary, and
/// where its contents lie.
struct Section {
    id: u8,
    whole: Range<usize>,
    body: Range<usize>,
}

/// The top-level sections of `bytes` after its 8-byte header, up to the
/// first that does not parse.
fn sections(bytes: &[u8]) -> impl Iterator<Item = Section> + '_ {
    let mut at = 8;
    std::iter::from_fn(move || {
        let &id = bytes.get(at)?;
        let (size, size_len) = leb128(bytes.get(at + 1..)?)?;
        let start = at + 1 + size_len;
        let end = start.checked_add(size).filter(|&end| end <= bytes.len())?;
        let section = Section {
            id,
            whole: at..end,
            body: start..end,
        };
        at = end;
        Some(section)
    })
}

/// Where the contents of `section` lie, if it is the custom section
/// `name`.
fn custom_contents(bytes: &[u8], section: &Section, name: &str) -> Option<Range<usize>> {
    if section.id != 0 {
        return None;
    }
    let body = &bytes[section.body.clone()];
    let (len, len_size) = leb128(body)?;
    let contents = len_size.checked_add(len)?;
    (body.get(len_size..contents)? == name.as_bytes())
        .then(|| section.body.start + contents..section.body.end)
}

/// An unsigned LEB128 number (at most 32 bits) and how many bytes it took.
fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(sections: &[(u8, &[u8])]) -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        for (id, body) in sections {
            bytes.push(*id);
            bytes.push(body.len() as u8);
            bytes.extend_from_slice(body);
        }
        bytes
    }

    #[test]
    fn a_custom_section_is_found_among_the_others() {
        let bytes = binary(&[
            (1, b"xyz"),
            (0, b"\x05othermounts = true"),
            (0, b"\x0enri-wasm:readsmounts = true"),
        ]);
        assert_eq!(
            custom_section(&bytes, READS_SECTION),
            Some(&b"mounts = true"[..])
        );
        assert_eq!(custom_section(&bytes, "absent"), None);
        assert_eq!(
            custom_section(&bytes[..bytes.len() - 3], READS_SECTION),
            None
        );
    }

    #[test]
    fn setting_a_custom_section_replaces_it_and_keeps_the_rest() {
        let bytes = binary(&[
            (1, b"xyz"),
            (0, b"\x0enri-wasm:readsmounts = true"),
            (0, b"\x05other!"),
        ]);
        let set = with_custom_section(&bytes, READS_SECTION, b"env = true").unwrap();
        assert_eq!(
            custom_section(&set, READS_SECTION),
            Some(&b"env = true"[..])
        );
        assert_eq!(custom_section(&set, "other"), Some(&b"!"[..]));
        assert_eq!(
            set,
            binary(&[
                (1, b"xyz"),
                (0, b"\x05other!"),
                (0, b"\x0enri-wasm:readsenv = true"),
            ])
        );
        let again = with_custom_section(&set, READS_SECTION, b"env = true").unwrap();
        assert_eq!(again, set);
    }

    #[test]
    fn a_binary_that_does_not_parse_is_not_annotated() {
        let bytes = binary(&[(1, b"xyz")]);
        let cut = &bytes[..bytes.len() - 1];
        assert!(with_custom_section(cut, READS_SECTION, b"")
            .unwrap_err()
            .contains("byte 8"));
        for not_wasm in [&b"\0as"[..], b"not wasm at all"] {
            assert_eq!(
                with_custom_section(not_wasm, READS_SECTION, b""),
                Err("not a Wasm binary".to_string())
            );
        }
    }

    #[test]
    fn the_guest_build_writes_the_section_nri_wasm_reads() {
        assert_eq!(nri_wasm_guest_build::READS_SECTION, READS_SECTION);
    }
}
