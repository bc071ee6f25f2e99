//! A list of keys (byte strings) in one buffer: the first key of each chunk of a WITHOUT ROWID
//! table, kept in the page map. One allocation for all of them and 8 bytes of bookkeeping a
//! key, where a `Vec<Vec<u8>>` costs 24 bytes plus an allocation (~32 bytes) a key.

/// See the module doc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyList {
    bytes: Vec<u8>,
    /// Where each key ends in `bytes`.
    ends: Vec<usize>,
}

impl KeyList {
    pub fn with_capacity(keys: usize) -> KeyList {
        KeyList {
            bytes: Vec::new(),
            ends: Vec::with_capacity(keys),
        }
    }

    pub fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Key `i` (panics past the end, like indexing).
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Give back unused room (the list is kept until the next snapshot).
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_apart() {
        let mut list = KeyList::default();
        for k in [&b"a\0"[..], b"", b"bcd\0e\0"] {
            list.push(k);
        }
        assert_eq!(list.len(), 3);
        assert_eq!(list.get(1), b"");
        let all: Vec<&[u8]> = list.iter().collect();
        assert_eq!(all, vec![&b"a\0"[..], b"", b"bcd\0e\0"]);
    }
}
