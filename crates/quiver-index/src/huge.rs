//! Large arrays that searches read at random — quantized codes, layer-0 link lists, visited marks — asked to sit
//! on transparent huge pages.
//!
//! A graph search over a million points touches a different 4 KiB page for nearly every neighbour it scores, so
//! most of its loads also miss the TLB and wait for a page walk. On 2 MiB pages the same arrays need 512× fewer
//! translations and stay covered by the second-level TLB. On Linux the memory is advised with
//! `madvise(MADV_HUGEPAGE)` *before* anything is written to it, so the first touch of each aligned 2 MiB range
//! faults in a huge page (the advice is honoured when `/sys/kernel/mm/transparent_hugepage/enabled` is `madvise`,
//! the common default, or `always`; with `never` it is a no-op). Elsewhere, and for arrays under [`MIN_BYTES`],
//! these are plain allocations. The advice changes how the kernel backs the memory, never its contents or
//! lifetime: the vectors returned here are ordinary `Vec`s, freed the ordinary way.

/// Arrays smaller than this are allocated normally (they fit the TLB's reach anyway).
pub(crate) const MIN_BYTES: usize = 4 << 20;

/// An empty vector with room for `cap` elements, its memory advised onto huge pages before first use.
pub(crate) fn with_capacity<T>(cap: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(cap);
    advise(v.as_ptr() as usize, cap.saturating_mul(size_of::<T>()));
    v
}

/// `len` copies of `value`, on huge pages where possible.
pub(crate) fn filled<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut v = with_capacity(len);
    v.resize(len, value);
    v
}

/// A copy of `items`, on huge pages where possible.
pub(crate) fn copied<T: Copy>(items: &[T]) -> Vec<T> {
    let mut v = with_capacity(items.len());
    v.extend_from_slice(items);
    v
}

/// The items of `iter` (of exactly `len` items, or the vector grows the ordinary way), on huge pages where possible.
pub(crate) fn collected<T>(len: usize, iter: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v = with_capacity(len);
    v.extend(iter);
    v
}

/// Reserves room for `additional` more elements in `v`; a reallocation large enough gets the advice too.
pub(crate) fn reserve<T>(v: &mut Vec<T>, additional: usize) {
    if v.capacity() - v.len() >= additional {
        return;
    }
    // Grow geometrically, as `Vec` would, but into a fresh advised allocation.
    let cap = (v.len() + additional).max(v.capacity() * 2);
    if cap.saturating_mul(size_of::<T>()) < MIN_BYTES {
        v.reserve(additional);
        return;
    }
    let mut grown = with_capacity(cap);
    grown.append(v);
    *v = grown;
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise(start: usize, len: usize) {
    const HUGE: usize = 2 << 20;
    if len < MIN_BYTES {
        return;
    }
    // Only whole huge pages inside the allocation: a fault can use a huge page only for an aligned 2 MiB range.
    let begin = start.next_multiple_of(HUGE);
    let end = (start + len) / HUGE * HUGE;
    if end > begin {
        // SAFETY: [begin, end) lies inside an allocation this process owns (a `Vec`'s buffer of `len` bytes from
        // `start`); MADV_HUGEPAGE changes only how the kernel backs those pages, not their contents or mapping. A
        // kernel without transparent huge pages answers EINVAL, which leaves the memory as it was — ignored.
        unsafe {
            libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_hold_what_was_asked() {
        let big = MIN_BYTES / 4 + 123;
        let v = filled(big, 7u32);
        assert_eq!(v.len(), big);
        assert!(v.iter().all(|&x| x == 7));
        let src: Vec<u16> = (0..big as u32).map(|i| i as u16).collect();
        assert_eq!(copied(&src), src);
        assert_eq!(collected(big, src.iter().map(|&x| x as u32)), src.iter().map(|&x| x as u32).collect::<Vec<_>>());
        let small = filled(3, 1u8);
        assert_eq!(small, vec![1, 1, 1]);
    }

    #[test]
    fn reserve_keeps_the_elements_and_grows() {
        let mut v: Vec<u64> = (0..1000).collect();
        reserve(&mut v, MIN_BYTES);
        assert!(v.capacity() >= 1000 + MIN_BYTES);
        assert_eq!(v, (0..1000).collect::<Vec<u64>>());
        let mut w: Vec<u8> = vec![1, 2];
        reserve(&mut w, 10);
        assert!(w.capacity() >= 12);
        assert_eq!(w, vec![1, 2]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn large_vectors_are_advised_onto_huge_pages() {
        // The advice shows in /proc/self/smaps as the `hg` VmFlag of the mapping that holds the vector (when the
        // kernel has transparent huge pages at all; skipped where it does not).
        let Ok(mode) = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") else { return };
        if mode.contains("[never]") {
            return;
        }
        let v: Vec<u8> = filled(16 << 20, 1);
        let addr = v.as_ptr() as usize + (8 << 20);
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        let mut flags = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = a <= addr && addr < b;
            } else if inside && line.starts_with("VmFlags:") {
                flags = Some(line.to_owned());
            }
        }
        let flags = flags.expect("the vector's mapping is in smaps");
        assert!(flags.split_whitespace().any(|f| f == "hg"), "{flags}");
    }
}
