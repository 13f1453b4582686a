//! An ordered map from message ids to index entries, built for a queue: ids are handed out
//! in increasing order, so almost every insert lands at the end, and removals come in
//! roughly the same order. A `BTreeMap` splits its nodes in the middle, so appending leaves
//! them half full (about 1.8× the entry size per message); here entries sit in sorted
//! blocks that an append fills completely, with ids and values in separate vectors so a
//! 16-byte-aligned id adds no padding to a value. Millions of queued messages make this
//! the largest structure in memory.

use std::collections::BTreeMap;

use crate::id::MessageId;

/// Most entries in one block: a lookup is a B-tree step and a binary search, an insert or
/// removal in the middle moves at most this many entries.
const BLOCK_ENTRIES_MAX: usize = 512;

/// A block smaller than this merges with its right neighbour when they fit in one.
const BLOCK_ENTRIES_MERGE: usize = BLOCK_ENTRIES_MAX / 4;

#[derive(Debug)]
struct Block<V> {
    ids: Vec<MessageId>,
    values: Vec<V>,
}

impl<V> Block<V> {
    fn new() -> Block<V> {
        Block {
            ids: Vec::with_capacity(BLOCK_ENTRIES_MAX),
            values: Vec::with_capacity(BLOCK_ENTRIES_MAX),
        }
    }

    fn shrink(&mut self) {
        self.ids.shrink_to_fit();
        self.values.shrink_to_fit();
    }
}

/// The map. Blocks are keyed by a lower bound of their ids (the first id they held when
/// made); every id in a block is below the next block's key.
#[derive(Debug)]
pub(crate) struct IdMap<V> {
    blocks: BTreeMap<MessageId, Block<V>>,
    len: usize,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap {
            blocks: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<V> IdMap<V> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The key of the block `id` belongs in: the greatest key not above it, else the first.
    fn block_key(&self, id: MessageId) -> Option<MessageId> {
        self.blocks
            .range(..=id)
            .next_back()
            .or_else(|| self.blocks.iter().next())
            .map(|(&key, _)| key)
    }

    pub fn get(&self, id: &MessageId) -> Option<&V> {
        let key = self.block_key(*id)?;
        let block = self.blocks.get(&key)?;
        let at = block.ids.binary_search(id).ok()?;
        block.values.get(at)
    }

    pub fn get_mut(&mut self, id: &MessageId) -> Option<&mut V> {
        let key = self.block_key(*id)?;
        let block = self.blocks.get_mut(&key)?;
        let at = block.ids.binary_search(id).ok()?;
        block.values.get_mut(at)
    }

    /// Inserts `value` under `id`; returns the value it replaces.
    pub fn insert(&mut self, id: MessageId, value: V) -> Option<V> {
        let Some(mut key) = self.block_key(id) else {
            let mut block = Block::new();
            block.ids.push(id);
            block.values.push(value);
            self.blocks.insert(id, block);
            self.len += 1;
            return None;
        };
        let block = self.blocks.get_mut(&key)?;
        let at = match block.ids.binary_search(&id) {
            Ok(at) => return Some(std::mem::replace(&mut block.values[at], value)),
            Err(at) => at,
        };
        if block.ids.len() >= BLOCK_ENTRIES_MAX {
            if at == block.ids.len() {
                // Appending past a full block: a new block, so appends fill blocks whole.
                let mut fresh = Block::new();
                fresh.ids.push(id);
                fresh.values.push(value);
                self.blocks.insert(id, fresh);
                self.len += 1;
                return None;
            }
            // Inserting inside a full block: split it in two halves.
            let ids = block.ids.split_off(BLOCK_ENTRIES_MAX / 2);
            let values = block.values.split_off(BLOCK_ENTRIES_MAX / 2);
            block.shrink();
            let right_key = ids[0];
            let mut right = Block { ids, values };
            right.shrink();
            self.blocks.insert(right_key, right);
            if id >= right_key {
                key = right_key;
            }
        }
        let block = self.blocks.get_mut(&key)?;
        let at = block.ids.binary_search(&id).unwrap_or_else(|at| at);
        block.ids.insert(at, id);
        block.values.insert(at, value);
        if key > id {
            // A new smallest id: the first block's key must stay a lower bound.
            let block = self.blocks.remove(&key);
            if let Some(block) = block {
                self.blocks.insert(id, block);
            }
        }
        self.len += 1;
        None
    }

    pub fn remove(&mut self, id: &MessageId) -> Option<V> {
        let key = self.block_key(*id)?;
        let block = self.blocks.get_mut(&key)?;
        let at = block.ids.binary_search(id).ok()?;
        block.ids.remove(at);
        let value = block.values.remove(at);
        self.len -= 1;
        let remaining = block.ids.len();
        if remaining == 0 {
            self.blocks.remove(&key);
        } else if remaining < BLOCK_ENTRIES_MERGE {
            self.merge_after(key);
        }
        Some(value)
    }

    /// Merges the block at `key` with the next one when both fit in one block.
    fn merge_after(&mut self, key: MessageId) {
        let next_key = {
            let mut after = self
                .blocks
                .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded));
            match after.next() {
                Some((&next, next_block)) => {
                    let here = self.blocks.get(&key).map_or(0, |b| b.ids.len());
                    if here + next_block.ids.len() > BLOCK_ENTRIES_MAX {
                        return;
                    }
                    next
                }
                None => return,
            }
        };
        let Some(next) = self.blocks.remove(&next_key) else {
            return;
        };
        if let Some(block) = self.blocks.get_mut(&key) {
            block.ids.extend(next.ids);
            block.values.extend(next.values);
        }
    }

    /// Entries with ids greater than `after` (all when `None`), in id order.
    pub fn iter_after(&self, after: Option<MessageId>) -> impl Iterator<Item = (MessageId, &V)> {
        let start = after.and_then(|a| self.block_key(a));
        let blocks: Box<dyn Iterator<Item = &Block<V>>> = match start {
            Some(key) => Box::new(self.blocks.range(key..).map(|(_, b)| b)),
            None => Box::new(self.blocks.values()),
        };
        blocks
            .flat_map(|b| b.ids.iter().copied().zip(b.values.iter()))
            .filter(move |(id, _)| after.is_none_or(|a| *id > a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap as Model;

    proptest::proptest! {
        /// Any sequence of inserts (mostly increasing, some anywhere) and removals leaves
        /// the map equal to a BTreeMap given the same operations, in order and length.
        #[test]
        fn behaves_like_a_btree_map(ops in proptest::collection::vec((0u8..10, 0u32..3000), 1..3000)) {
            let mut map = IdMap::default();
            let mut model = Model::new();
            let mut next = 0u32;
            for (op, n) in ops {
                match op {
                    0..=5 => {
                        next += 1;
                        let id = MessageId(u128::from(next) * 4);
                        proptest::prop_assert_eq!(map.insert(id, next), model.insert(id, next));
                    }
                    6 => {
                        let id = MessageId(u128::from(n) * 4 + 1);
                        proptest::prop_assert_eq!(map.insert(id, n), model.insert(id, n));
                    }
                    _ => {
                        let id = MessageId(u128::from(n % (next + 1)) * 4 + u128::from(op == 9));
                        proptest::prop_assert_eq!(map.remove(&id), model.remove(&id));
                    }
                }
                proptest::prop_assert_eq!(map.len(), model.len());
            }
            let ours: Vec<(MessageId, u32)> = map.iter_after(None).map(|(k, v)| (k, *v)).collect();
            let theirs: Vec<(MessageId, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
            proptest::prop_assert_eq!(&ours, &theirs);
            if let Some(&(middle, _)) = theirs.get(theirs.len() / 2) {
                let after: Vec<MessageId> = map.iter_after(Some(middle)).map(|(k, _)| k).collect();
                let expected: Vec<MessageId> = model.range((std::ops::Bound::Excluded(middle), std::ops::Bound::Unbounded)).map(|(k, _)| *k).collect();
                proptest::prop_assert_eq!(after, expected);
            }
            for (id, value) in &model {
                proptest::prop_assert_eq!(map.get(id), Some(value));
            }
        }
    }
}
