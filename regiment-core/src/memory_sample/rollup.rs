//! The text of `/proc/PID/smaps_rollup`, parsed without allocating.
//!
//! One line per field, `Name:   1234 kB`, after a first line that names the rolled-up range
//! (`55f3...-7ffc... ---p 00000000 00:00 0   [rollup]`). Fields this module does not need, and
//! fields later kernels add, are skipped; each field it needs must be there exactly as a number
//! of kB, or the whole reading is refused: a zero standing in for a field the kernel renamed
//! would hide a leak.

use super::PrivateMemory;

/// Why a text is not a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Malformed {
    /// No line for this field (in the text read so far).
    Missing(&'static str),
    /// A line for this field whose value is not `<number> kB` (or overflows bytes in a `u64`).
    NotKb(&'static str),
}

/// The fields read, in the order of [`PrivateMemory`]'s sums below.
const FIELDS: [&str; 8] = [
    "Rss",
    "Pss",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Swap",
    "SwapPss",
];

/// Parses the complete lines of `text` (a last line without its newline is ignored: it may be
/// cut short by the read).
pub(super) fn parse(text: &[u8]) -> Result<PrivateMemory, Malformed> {
    let complete = match text.iter().rposition(|b| *b == b'\n') {
        Some(end) => &text[..end],
        None => &[][..],
    };
    let mut found: [Option<u64>; FIELDS.len()] = [None; FIELDS.len()];
    for line in complete.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let Some(i) = FIELDS.iter().position(|f| f.as_bytes() == name) else {
            continue;
        };
        found[i] = Some(bytes_of_kb(&line[colon + 1..]).ok_or(Malformed::NotKb(FIELDS[i]))?);
    }
    let mut value = [0; FIELDS.len()];
    for (i, v) in found.iter().enumerate() {
        value[i] = v.ok_or(Malformed::Missing(FIELDS[i]))?;
    }
    let [
        rss,
        pss,
        shared_clean,
        shared_dirty,
        private_clean,
        private_dirty,
        swap,
        swap_pss,
    ] = value;
    Ok(PrivateMemory {
        rss,
        pss,
        uss: private_clean + private_dirty,
        shared: shared_clean + shared_dirty,
        swap,
        swap_pss,
    })
}

/// `   1234 kB` in bytes.
fn bytes_of_kb(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii().strip_suffix(b"kB")?.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value
        .iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?
        .checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hello worker's `/proc/PID/smaps_rollup` (one of 4), copied from the reference
    /// machine (Linux 6.18, no swap): every field of a current kernel, in its order.
    const HELLO_WORKER: &str = "\
558570d36000-7ffd2fdb8000 ---p 00000000 00:00 0                          [rollup]
Rss:                6724 kB
Pss:                1682 kB
Pss_Dirty:           616 kB
Pss_Anon:            616 kB
Pss_File:           1066 kB
Pss_Shmem:             0 kB
Shared_Clean:       6004 kB
Shared_Dirty:          0 kB
Private_Clean:       104 kB
Private_Dirty:       616 kB
Referenced:         6724 kB
Anonymous:           616 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
";

    #[test]
    fn a_real_rollup_gives_each_figure_in_bytes() {
        assert_eq!(
            parse(HELLO_WORKER.as_bytes()),
            Ok(PrivateMemory {
                rss: 6724 * 1024,
                pss: 1682 * 1024,
                uss: (104 + 616) * 1024,
                shared: 6004 * 1024,
                swap: 0,
                swap_pss: 0,
            })
        );
    }

    #[test]
    fn swap_is_read_apart_from_the_resident_figures() {
        let swapped = HELLO_WORKER
            .replace("Shared_Dirty:          0 kB", "Shared_Dirty:         12 kB")
            .replace("Swap:                  0 kB", "Swap:                 40 kB")
            .replace("SwapPss:               0 kB", "SwapPss:              20 kB");
        let m = parse(swapped.as_bytes()).unwrap();
        assert_eq!(
            (m.shared, m.swap, m.swap_pss),
            ((6004 + 12) << 10, 40 << 10, 20 << 10)
        );
        assert_eq!((m.rss, m.pss), (6724 << 10, 1682 << 10));
    }

    #[test]
    fn the_rollup_of_linux_4_14_without_the_later_fields_is_read() {
        // The fields, in their order, that Linux 4.14's show_smap wrote in rollup mode
        // (fs/proc/task_mmu.c): no Pss_* breakdown (5.8), FilePmdMapped or KSM. Written after
        // that source, values made up; no 4.14 machine to copy from. Fields come and go
        // between versions, and only the eight read here matter.
        let old = "\
00400000-7ffd2a5e6000 ---p 00000000 00:00 0                              [rollup]
Rss:                 884 kB
Pss:                 385 kB
Shared_Clean:        504 kB
Shared_Dirty:          0 kB
Private_Clean:        40 kB
Private_Dirty:       340 kB
Referenced:          884 kB
Anonymous:           340 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
";
        let m = parse(old.as_bytes()).unwrap();
        assert_eq!((m.rss, m.pss, m.uss), (884 << 10, 385 << 10, 380 << 10));
    }

    #[test]
    fn a_missing_field_is_named_never_read_as_zero() {
        let without_swap_pss = HELLO_WORKER.replace("SwapPss:               0 kB\n", "");
        assert_eq!(
            parse(without_swap_pss.as_bytes()),
            Err(Malformed::Missing("SwapPss"))
        );
        // `Pss_Dirty` and the other `Pss_*` lines are not `Pss`.
        let without_pss = HELLO_WORKER.replace("Pss:                1682 kB\n", "");
        assert_eq!(
            parse(without_pss.as_bytes()),
            Err(Malformed::Missing("Pss"))
        );
        assert_eq!(parse(b""), Err(Malformed::Missing("Rss")));
    }

    #[test]
    fn a_text_cut_short_lacks_the_fields_of_its_last_line() {
        // Cut in the middle of "Private_Dirty:  616 kB": that line is not taken as 6 kB.
        let line = "Private_Dirty:       616 kB";
        let cut = &HELLO_WORKER[..HELLO_WORKER.find(line).unwrap() + line.find("616").unwrap() + 1];
        assert!(cut.ends_with("  6"), "{cut:?}");
        assert_eq!(
            parse(cut.as_bytes()),
            Err(Malformed::Missing("Private_Dirty"))
        );
    }

    #[test]
    fn a_value_that_is_not_a_number_of_kb_is_named() {
        for bad in [
            "Rss:  12 MB\n",
            "Rss:  kB\n",
            "Rss:  -3 kB\n",
            "Rss:  1.5 kB\n",
            "Rss:  99999999999999999999 kB\n",
            // Fits a u64 in kB, not in bytes.
            "Rss:  18014398509481984 kB\n",
        ] {
            let text = HELLO_WORKER.replace("Rss:                6724 kB\n", bad);
            assert_eq!(
                parse(text.as_bytes()),
                Err(Malformed::NotKb("Rss")),
                "{bad}"
            );
        }
    }
}
