//! [`Block`]: rows held as typed columns, the form batches take from decoding to encoding.
//!
//! A sample is a few numbers and two short strings; held as a row (`Vec<Value>` plus an owned
//! metric string) it costs two allocations and scattered memory. In a block the same sample is
//! one push per column: numbers into `Vec<u64>`/`Vec<i64>`/`Vec<f64>`, strings into one byte
//! buffer, `LowCardinality(String)` as dictionary ids with the dictionary built while decoding
//! (so the Native encoder writes it without hashing any string again). Types without a typed
//! form here (`Nullable`, `Array`, `Map`, `Decimal`, `UUID`, `FixedString`, other
//! `LowCardinality`) keep their [`Value`]s.
//!
//! Blocks are appended (the batcher merges requests; dictionaries are remapped), split (a
//! rejected batch is retried per request) and partitioned (shard-aware writes). Every operation
//! keeps the rows' order, so the same rows always encode to the same bytes.

use crate::encode::Column;
use crate::types::ColumnType;
use crate::value::{Row, Value};

/// Strings back to back, with the end offset of each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Strings {
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl Strings {
    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Appends a string.
    pub fn push(&mut self, s: &[u8]) {
        // An empty string (the tenant column without auth) costs no copy call.
        if !s.is_empty() {
            self.bytes.extend_from_slice(s);
        }
        self.ends.push(self.bytes.len());
    }

    /// Every string in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let s = &self.bytes[start..end];
            start = end;
            s
        })
    }

    /// All strings' bytes, back to back.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn reserve(&mut self, n: usize) {
        self.ends.reserve(n);
    }

    /// Appends `other`'s strings.
    fn append(&mut self, other: Strings) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(other.ends.iter().map(|end| end + base));
    }

    fn heap_bytes(&self) -> usize {
        self.ends.capacity() * 8 + self.bytes.capacity()
    }
}

/// `LowCardinality(String)`: a dictionary of distinct strings and one id per row.
#[derive(Debug, Clone, Default)]
pub struct LcStrings {
    dict: Strings,
    lookup: ahash::AHashMap<Box<[u8]>, u32>,
    ids: Vec<u32>,
    /// The id pushed last: runs of one value (the tenant, a series' samples) skip the look-up.
    last: Option<u32>,
}

impl PartialEq for LcStrings {
    fn eq(&self, other: &Self) -> bool {
        self.ids.len() == other.ids.len() && self.iter().eq(other.iter())
    }
}

impl LcStrings {
    /// The dictionary id of `s`, adding it when new.
    pub fn id_of(&mut self, s: &[u8]) -> u32 {
        if let Some(last) = self.last {
            if self.dict.get(last as usize) == s {
                return last;
            }
        }
        let id = match self.lookup.get(s) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.dict.len()).unwrap_or(u32::MAX);
                self.dict.push(s);
                self.lookup.insert(s.into(), id);
                id
            }
        };
        self.last = Some(id);
        id
    }

    /// Appends a row holding `s`.
    pub fn push(&mut self, s: &[u8]) {
        let id = self.id_of(s);
        self.ids.push(id);
    }

    /// Appends a row holding dictionary entry `id` (from [`LcStrings::id_of`]).
    pub fn push_id(&mut self, id: u32) {
        self.ids.push(id);
    }

    /// The dictionary, in id order.
    pub fn dictionary(&self) -> &Strings {
        &self.dict
    }

    /// Each row's dictionary id.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Row `i`'s string.
    pub fn get(&self, i: usize) -> &[u8] {
        self.dict.get(self.ids[i] as usize)
    }

    /// Every row's string in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.ids.iter().map(|&id| self.dict.get(id as usize))
    }

    /// A column of `ids` (ids of this dictionary) with only the entries they use.
    fn select(&self, rows: impl Iterator<Item = usize>) -> LcStrings {
        let mut out = LcStrings::default();
        let mut remap = vec![u32::MAX; self.dict.len()];
        for i in rows {
            let old = self.ids[i] as usize;
            if remap[old] == u32::MAX {
                remap[old] = out.id_of(self.dict.get(old));
            }
            out.ids.push(remap[old]);
        }
        out
    }

    fn append(&mut self, other: LcStrings) {
        let remap: Vec<u32> = other.dict.iter().map(|s| self.id_of(s)).collect();
        self.ids
            .extend(other.ids.iter().map(|&id| remap[id as usize]));
    }

    fn heap_bytes(&self) -> usize {
        self.ids.capacity() * 4 + self.dict.heap_bytes() * 2 + self.lookup.capacity() * 24
    }
}

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `UInt8..UInt64`, `Bool`, `Date` (days), `DateTime` (seconds).
    UInt(Vec<u64>),
    /// `Int8..Int64`, `Enum8/16` codes, `DateTime64` ticks.
    Int(Vec<i64>),
    /// `Float32`, `Float64`.
    Float(Vec<f64>),
    /// `String`.
    Str(Strings),
    /// `LowCardinality(String)`.
    Lc(LcStrings),
    /// Any other type, as values.
    Values(Vec<Value>),
}

impl Data {
    /// An empty column for values of type `ty`.
    pub fn for_type(ty: &ColumnType) -> Data {
        use ColumnType as T;
        match ty {
            T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 | T::Bool | T::Date | T::DateTime => {
                Data::UInt(Vec::new())
            }
            T::Int8
            | T::Int16
            | T::Int32
            | T::Int64
            | T::Enum8(_)
            | T::Enum16(_)
            | T::DateTime64(_) => Data::Int(Vec::new()),
            T::Float32 | T::Float64 => Data::Float(Vec::new()),
            T::String => Data::Str(Strings::default()),
            T::LowCardinality(inner) if **inner == T::String => Data::Lc(LcStrings::default()),
            _ => Data::Values(Vec::new()),
        }
    }

    /// Rows in the column.
    pub fn len(&self) -> usize {
        match self {
            Data::UInt(v) => v.len(),
            Data::Int(v) => v.len(),
            Data::Float(v) => v.len(),
            Data::Str(s) => s.len(),
            Data::Lc(l) => l.ids.len(),
            Data::Values(v) => v.len(),
        }
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a value, converted as the encoders read values of another kind (a value the
    /// column cannot hold becomes its zero).
    pub fn push(&mut self, v: Value) {
        match self {
            Data::UInt(c) => c.push(match v {
                Value::UInt(x) => x,
                Value::Int(x) => x as u64,
                _ => 0,
            }),
            Data::Int(c) => c.push(match v {
                Value::Int(x) => x,
                Value::UInt(x) => x as i64,
                _ => 0,
            }),
            Data::Float(c) => c.push(match v {
                Value::Float(f) => f,
                Value::Int(i) => i as f64,
                Value::UInt(u) => u as f64,
                _ => 0.0,
            }),
            Data::Str(s) => s.push(match &v {
                Value::Bytes(b) => b,
                _ => &[],
            }),
            Data::Lc(l) => l.push(match &v {
                Value::Bytes(b) => b,
                _ => &[],
            }),
            Data::Values(c) => c.push(v),
        }
    }

    /// Appends an unsigned number.
    #[inline]
    pub fn push_u64(&mut self, x: u64) {
        match self {
            Data::UInt(c) => c.push(x),
            other => other.push(Value::UInt(x)),
        }
    }

    /// Appends a signed number.
    #[inline]
    pub fn push_i64(&mut self, x: i64) {
        match self {
            Data::Int(c) => c.push(x),
            other => other.push(Value::Int(x)),
        }
    }

    /// Appends a float.
    #[inline]
    pub fn push_f64(&mut self, x: f64) {
        match self {
            Data::Float(c) => c.push(x),
            other => other.push(Value::Float(x)),
        }
    }

    /// Appends a string.
    #[inline]
    pub fn push_str(&mut self, s: &[u8]) {
        match self {
            Data::Str(c) => c.push(s),
            Data::Lc(l) => l.push(s),
            other => other.push(Value::Bytes(s.to_vec())),
        }
    }

    /// Row `i` as a value.
    pub fn value(&self, i: usize) -> Value {
        match self {
            Data::UInt(c) => Value::UInt(c[i]),
            Data::Int(c) => Value::Int(c[i]),
            Data::Float(c) => Value::Float(c[i]),
            Data::Str(s) => Value::Bytes(s.get(i).to_vec()),
            Data::Lc(l) => Value::Bytes(l.get(i).to_vec()),
            Data::Values(c) => c[i].clone(),
        }
    }

    fn reserve(&mut self, n: usize) {
        match self {
            Data::UInt(c) => c.reserve(n),
            Data::Int(c) => c.reserve(n),
            Data::Float(c) => c.reserve(n),
            Data::Str(s) => s.reserve(n),
            Data::Lc(l) => l.ids.reserve(n),
            Data::Values(c) => c.reserve(n),
        }
    }

    fn empty_like(&self) -> Data {
        match self {
            Data::UInt(_) => Data::UInt(Vec::new()),
            Data::Int(_) => Data::Int(Vec::new()),
            Data::Float(_) => Data::Float(Vec::new()),
            Data::Str(_) => Data::Str(Strings::default()),
            Data::Lc(_) => Data::Lc(LcStrings::default()),
            Data::Values(_) => Data::Values(Vec::new()),
        }
    }

    /// The rows `rows` (in that order) as a new column.
    fn select(&self, rows: &[usize]) -> Data {
        match self {
            Data::UInt(c) => Data::UInt(rows.iter().map(|&i| c[i]).collect()),
            Data::Int(c) => Data::Int(rows.iter().map(|&i| c[i]).collect()),
            Data::Float(c) => Data::Float(rows.iter().map(|&i| c[i]).collect()),
            Data::Str(s) => {
                let mut out = Strings::default();
                out.reserve(rows.len());
                for &i in rows {
                    out.push(s.get(i));
                }
                Data::Str(out)
            }
            Data::Lc(l) => Data::Lc(l.select(rows.iter().copied())),
            Data::Values(c) => Data::Values(rows.iter().map(|&i| c[i].clone()).collect()),
        }
    }

    /// Appends `other`'s rows (a column of the same type).
    fn append(&mut self, other: Data) {
        match (self, other) {
            (Data::UInt(a), Data::UInt(mut b)) => a.append(&mut b),
            (Data::Int(a), Data::Int(mut b)) => a.append(&mut b),
            (Data::Float(a), Data::Float(mut b)) => a.append(&mut b),
            (Data::Str(a), Data::Str(b)) => a.append(b),
            (Data::Lc(a), Data::Lc(b)) => a.append(b),
            (Data::Values(a), Data::Values(mut b)) => a.append(&mut b),
            (a, b) => {
                for i in 0..b.len() {
                    a.push(b.value(i));
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Data::UInt(c) => c.capacity() * 8,
            Data::Int(c) => c.capacity() * 8,
            Data::Float(c) => c.capacity() * 8,
            Data::Str(s) => s.heap_bytes(),
            Data::Lc(l) => l.heap_bytes(),
            Data::Values(c) => {
                c.capacity() * std::mem::size_of::<Value>()
                    + c.iter().map(Value::approx_size).sum::<usize>()
            }
        }
    }
}

/// Rows as columns, one [`Data`] per target column.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    /// The columns' data, in the column list's order.
    pub data: Vec<Data>,
}

impl Block {
    /// An empty block for `columns`.
    pub fn new(columns: &[Column]) -> Block {
        Block {
            data: columns.iter().map(|c| Data::for_type(&c.ty)).collect(),
        }
    }

    /// The rows as a block (each row holds one value per column).
    pub fn from_rows(columns: &[Column], rows: Vec<Row>) -> Block {
        let mut b = Block::new(columns);
        b.reserve(rows.len());
        for row in rows {
            b.push_row(row);
        }
        b
    }

    /// Borrowed rows as a block (values are copied).
    pub fn from_row_refs<R: AsRef<[Value]>>(columns: &[Column], rows: &[R]) -> Block {
        let mut b = Block::new(columns);
        b.reserve(rows.len());
        for row in rows {
            let row = row.as_ref();
            for (i, d) in b.data.iter_mut().enumerate() {
                d.push(row.get(i).cloned().unwrap_or(Value::Null));
            }
        }
        b
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.first().map_or(0, Data::len)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserves room for `n` more rows.
    pub fn reserve(&mut self, n: usize) {
        for d in &mut self.data {
            d.reserve(n);
        }
    }

    /// Appends a row (one value per column; missing values are `NULL`/zero).
    pub fn push_row(&mut self, row: Row) {
        let mut values = row.into_iter();
        for d in &mut self.data {
            d.push(values.next().unwrap_or(Value::Null));
        }
    }

    /// Row `i` as values.
    pub fn row(&self, i: usize) -> Row {
        self.data.iter().map(|d| d.value(i)).collect()
    }

    /// Every row as values (tests, and paths that need rows).
    pub fn to_rows(&self) -> Vec<Row> {
        (0..self.len()).map(|i| self.row(i)).collect()
    }

    /// Appends `other`'s rows (a block for the same columns).
    pub fn append(&mut self, other: Block) {
        if self.data.is_empty() {
            *self = other;
            return;
        }
        for (a, b) in self.data.iter_mut().zip(other.data) {
            a.append(b);
        }
    }

    /// Splits off rows `at..` into a new block (like `Vec::split_off`).
    pub fn split_off(&mut self, at: usize) -> Block {
        let len = self.len();
        let at = at.min(len);
        let tail: Vec<usize> = (at..len).collect();
        let head: Vec<usize> = (0..at).collect();
        let rest = self.select(&tail);
        *self = self.select(&head);
        rest
    }

    /// The rows `rows` (indexes, in that order) as a new block.
    pub fn select(&self, rows: &[usize]) -> Block {
        Block {
            data: self.data.iter().map(|d| d.select(rows)).collect(),
        }
    }

    /// Rows `lo..hi` as a new block.
    pub fn slice(&self, lo: usize, hi: usize) -> Block {
        let rows: Vec<usize> = (lo..hi.min(self.len())).collect();
        self.select(&rows)
    }

    /// Splits the rows by `place` (a part index per row, each `< parts`), keeping their order.
    pub fn partition(&self, place: &[usize], parts: usize) -> Vec<Block> {
        let mut per: Vec<Vec<usize>> = vec![Vec::new(); parts];
        for (i, &p) in place.iter().enumerate() {
            if let Some(rows) = per.get_mut(p) {
                rows.push(i);
            }
        }
        per.iter().map(|rows| self.select(rows)).collect()
    }

    /// Sets column `i` of every row to `value`.
    pub fn fill(&mut self, i: usize, value: &Value) {
        if let Some(d) = self.data.get_mut(i) {
            let len = d.len();
            let mut filled = d.empty_like();
            filled.reserve(len);
            for _ in 0..len {
                filled.push(value.clone());
            }
            *d = filled;
        }
    }

    /// Adds a column of type `ty` holding `value` in every row.
    pub fn push_column(&mut self, ty: &ColumnType, value: &Value) {
        let len = self.len();
        let mut d = Data::for_type(ty);
        d.reserve(len);
        for _ in 0..len {
            d.push(value.clone());
        }
        self.data.push(d);
    }

    /// About the size of the block's data in Native or RowBinary (an upper bound for the
    /// typed columns), for sizing output buffers.
    pub fn encoded_size_hint(&self) -> usize {
        self.data
            .iter()
            .map(|d| match d {
                Data::UInt(v) => v.len() * 8,
                Data::Int(v) => v.len() * 8,
                Data::Float(v) => v.len() * 8,
                Data::Str(s) => s.bytes.len() + s.len() * 2,
                Data::Lc(l) => l.ids.len() * 4 + l.dict.bytes.len() + l.dict.len() * 2 + 32,
                Data::Values(v) => v.iter().map(Value::approx_size).sum(),
            })
            .sum()
    }

    /// Memory the block holds, for the gateway's memory budget.
    pub fn heap_bytes(&self) -> usize {
        self.data.iter().map(Data::heap_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Column> {
        [
            ("t", "LowCardinality(String)"),
            ("id", "UInt64"),
            ("ts", "DateTime64(3)"),
            ("v", "Float64"),
            ("s", "String"),
            ("n", "Nullable(Int32)"),
        ]
        .iter()
        .map(|(n, t)| Column::parse(n, t).expect("type"))
        .collect()
    }

    fn rows(n: usize, salt: u64) -> Vec<Row> {
        (0..n as u64)
            .map(|i| {
                vec![
                    Value::str(&format!("m{}", (i + salt) % 3)),
                    Value::UInt(i + salt),
                    Value::Int(-(i as i64)),
                    Value::Float(i as f64 / 2.0),
                    Value::str(&"x".repeat(i as usize % 4)),
                    if i % 2 == 0 {
                        Value::Null
                    } else {
                        Value::Int(i as i64)
                    },
                ]
            })
            .collect()
    }

    #[test]
    fn rows_round_trip_through_a_block() {
        let r = rows(10, 0);
        let b = Block::from_rows(&cols(), r.clone());
        assert_eq!(b.len(), 10);
        assert_eq!(b.to_rows(), r);
        assert!(matches!(b.data[0], Data::Lc(_)));
        assert!(matches!(b.data[5], Data::Values(_)));
        if let Data::Lc(l) = &b.data[0] {
            assert_eq!(l.dictionary().len(), 3);
        }
    }

    #[test]
    fn append_remaps_dictionaries_and_keeps_order() {
        let (a, c) = (rows(5, 0), rows(7, 1));
        let mut b = Block::from_rows(&cols(), a.clone());
        b.append(Block::from_rows(&cols(), c.clone()));
        let mut want = a;
        want.extend(c);
        assert_eq!(b.to_rows(), want);
    }

    #[test]
    fn split_select_and_partition_keep_rows() {
        let r = rows(9, 0);
        let mut b = Block::from_rows(&cols(), r.clone());
        let tail = b.split_off(4);
        assert_eq!(b.to_rows(), r[..4]);
        assert_eq!(tail.to_rows(), r[4..]);
        let whole = Block::from_rows(&cols(), r.clone());
        let place: Vec<usize> = (0..9).map(|i| i % 2).collect();
        let parts = whole.partition(&place, 2);
        let even: Vec<Row> = r.iter().step_by(2).cloned().collect();
        assert_eq!(parts[0].to_rows(), even);
        assert_eq!(parts[1].len(), 4);
        // A part's dictionary holds only the strings its rows use.
        let one = whole.select(&[0, 3]);
        if let Data::Lc(l) = &one.data[0] {
            assert_eq!(l.dictionary().len(), 1);
        }
        assert_eq!(whole.slice(2, 5).to_rows(), r[2..5]);
    }

    #[test]
    fn fill_and_push_column_stamp_every_row() {
        let mut b = Block::from_rows(&cols(), rows(3, 0));
        b.fill(0, &Value::str("tenant"));
        let ty = ColumnType::parse("String").expect("type");
        b.push_column(&ty, &Value::str("z"));
        for row in b.to_rows() {
            assert_eq!(row[0], Value::str("tenant"));
            assert_eq!(row[6], Value::str("z"));
        }
        assert!(b.heap_bytes() > 0);
    }
}
