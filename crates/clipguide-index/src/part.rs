//! One Parquet part file: one row per image — path, size, mtime, content hash, model key and the
//! normalised embedding as a fixed-size list of f16 or f32. Arrow's schema is stored in the
//! footer, so engines read the embedding back as a fixed-size list of the right type.

use crate::error::{write_err, IndexError, Result};
use crate::manifest::{checksum, VectorType};
use arrow_array::cast::AsArray;
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::types::{Float16Type, Float32Type, Int64Type, UInt64Type};
use arrow_array::{
    ArrayRef, FixedSizeListArray, Int64Array, PrimitiveArray, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use half::f16;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::sync::Arc;

/// What identifies an image file's content without reading the pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// As given: relative to the indexed folder, or as written in a `--files` list.
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// xxh3-128 of the file's bytes, hex.
    pub hash: String,
}

/// Row-major unit vectors in the store's element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Vectors {
    F16(Vec<f16>),
    F32(Vec<f32>),
}

impl Vectors {
    pub fn new(kind: VectorType) -> Self {
        match kind {
            VectorType::F16 => Self::F16(vec![]),
            VectorType::F32 => Self::F32(vec![]),
        }
    }

    pub fn kind(&self) -> VectorType {
        match self {
            Self::F16(_) => VectorType::F16,
            Self::F32(_) => VectorType::F32,
        }
    }

    pub fn len_values(&self) -> usize {
        match self {
            Self::F16(v) => v.len(),
            Self::F32(v) => v.len(),
        }
    }

    pub fn push(&mut self, v: &[f32]) {
        match self {
            Self::F16(d) => d.extend(v.iter().map(|&x| f16::from_f32(x))),
            Self::F32(d) => d.extend_from_slice(v),
        }
    }

    /// Appends row `row` of `other` (same element type) without a round trip through f32.
    pub fn push_row_of(&mut self, other: &Self, row: usize, dim: usize) {
        let r = row * dim..(row + 1) * dim;
        match (self, other) {
            (Self::F16(d), Self::F16(s)) => d.extend_from_slice(&s[r]),
            (Self::F32(d), Self::F32(s)) => d.extend_from_slice(&s[r]),
            (d, s) => {
                let mut tmp = vec![0f32; dim];
                s.row_f32(row, dim, &mut tmp);
                d.push(&tmp);
            }
        }
    }

    /// Row `row` as f32 into `out` (`dim` long).
    pub fn row_f32(&self, row: usize, dim: usize, out: &mut [f32]) {
        use half::slice::HalfFloatSliceExt;
        let r = row * dim..(row + 1) * dim;
        match self {
            Self::F16(s) => s[r].convert_to_f32_slice(out),
            Self::F32(s) => out.copy_from_slice(&s[r]),
        }
    }
}

/// The rows of a part (or of a whole store), column by column.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    pub dim: usize,
    pub meta: Vec<FileMeta>,
    pub vectors: Vectors,
}

impl Rows {
    pub fn new(dim: usize, kind: VectorType) -> Self {
        Self {
            dim,
            meta: vec![],
            vectors: Vectors::new(kind),
        }
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    pub fn push(&mut self, meta: FileMeta, unit_vector: &[f32]) {
        debug_assert_eq!(unit_vector.len(), self.dim);
        self.meta.push(meta);
        self.vectors.push(unit_vector);
    }

    pub fn push_row_of(&mut self, other: &Rows, row: usize) {
        self.meta.push(other.meta[row].clone());
        self.vectors.push_row_of(&other.vectors, row, self.dim);
    }

    pub fn append(&mut self, other: &Rows) {
        for i in 0..other.len() {
            self.push_row_of(other, i);
        }
    }

    /// Room for `rows` more rows without reallocating (a growing vector's doubling would
    /// otherwise hold up to twice the store while it is read). Only a hint: where the memory
    /// cannot be had (a row count no file could hold), nothing is reserved and rows are pushed
    /// as they come.
    pub fn reserve(&mut self, rows: usize) {
        let values = rows.saturating_mul(self.dim);
        let _ = self.meta.try_reserve_exact(rows);
        let _ = match &mut self.vectors {
            Vectors::F16(v) => v.try_reserve_exact(values),
            Vectors::F32(v) => v.try_reserve_exact(values),
        };
    }

    pub fn row_f32(&self, row: usize) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        self.vectors.row_f32(row, self.dim, &mut v);
        v
    }
}

fn schema(dim: usize, kind: VectorType) -> Schema {
    let elem = match kind {
        VectorType::F16 => DataType::Float16,
        VectorType::F32 => DataType::Float32,
    };
    Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("size", DataType::UInt64, false),
        Field::new("mtime_ns", DataType::Int64, false),
        Field::new("hash", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new(
            "embedding",
            DataType::FixedSizeList(Arc::new(Field::new("item", elem, false)), dim as i32),
            false,
        ),
    ])
}

/// The part's bytes: deterministic for the same rows (no timestamps, no codec).
pub fn encode(rows: &Rows, model: &str) -> Vec<u8> {
    let kind = rows.vectors.kind();
    let schema = Arc::new(schema(rows.dim, kind));
    let n = rows.len();
    let path: ArrayRef = Arc::new(StringArray::from_iter_values(
        rows.meta.iter().map(|m| m.path.as_str()),
    ));
    let size: ArrayRef = Arc::new(UInt64Array::from_iter_values(
        rows.meta.iter().map(|m| m.size),
    ));
    let mtime: ArrayRef = Arc::new(Int64Array::from_iter_values(
        rows.meta.iter().map(|m| m.mtime_ns),
    ));
    let hash: ArrayRef = Arc::new(StringArray::from_iter_values(
        rows.meta.iter().map(|m| m.hash.as_str()),
    ));
    let models: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(model, n)));
    let emb = match &rows.vectors {
        Vectors::F16(v) => list_array::<Float16Type>(DataType::Float16, v, rows.dim),
        Vectors::F32(v) => list_array::<Float32Type>(DataType::Float32, v, rows.dim),
    };
    let batch = RecordBatch::try_new(schema.clone(), vec![path, size, mtime, hash, models, emb])
        .expect("columns match the schema");
    // Dictionaries of floats never pay; plain pages also keep the writer fast.
    let props = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_created_by(format!("clipguide {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, Some(props)).expect("a valid schema");
    w.write(&batch).expect("writing to memory");
    w.close().expect("writing to memory");
    out
}

/// Row-major `values` as a fixed-size list column of `dim`-long rows.
fn list_array<T: ArrowPrimitiveType>(elem: DataType, values: &[T::Native], dim: usize) -> ArrayRef {
    let field = Arc::new(Field::new("item", elem, false));
    let values = Arc::new(PrimitiveArray::<T>::new(values.to_vec().into(), None));
    Arc::new(FixedSizeListArray::new(field, dim as i32, values, None))
}

/// Writes a part atomically; returns its checksum.
pub fn write(path: &Path, rows: &Rows, model: &str) -> Result<String> {
    let bytes = encode(rows, model);
    clipguide_clip::fsutil::write_atomic(path, &bytes).map_err(write_err(path))?;
    Ok(checksum(&bytes))
}

/// Reads a part, checking its bytes against `expected` checksum, its model and dimension.
pub fn read(path: &Path, expected: &str, dim: usize, kind: VectorType) -> Result<Rows> {
    let bad = |detail: String| IndexError::BadPart {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let sum = checksum(&bytes);
    if sum != expected {
        return Err(bad(format!(
            "checksum {sum} but the manifest says {expected}"
        )));
    }
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|b| b.build())
        .map_err(|e| bad(e.to_string()))?;
    let mut rows = Rows::new(dim, kind);
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        decode_batch(&batch, &mut rows).map_err(bad)?;
    }
    Ok(rows)
}

fn decode_batch(b: &RecordBatch, rows: &mut Rows) -> std::result::Result<(), String> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| format!("no column {name:?}"))
    };
    let path = col("path")?
        .as_string_opt::<i32>()
        .ok_or("path is not text")?;
    let size = col("size")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or("size is not u64")?;
    let mtime = col("mtime_ns")?
        .as_primitive_opt::<Int64Type>()
        .ok_or("mtime_ns is not i64")?;
    let hash = col("hash")?
        .as_string_opt::<i32>()
        .ok_or("hash is not text")?;
    let emb = col("embedding")?
        .as_fixed_size_list_opt()
        .ok_or("embedding is not a fixed-size list")?;
    if emb.value_length() as usize != rows.dim {
        return Err(format!(
            "embeddings of {} dimensions, the manifest says {}",
            emb.value_length(),
            rows.dim
        ));
    }
    let values = emb.values();
    match &mut rows.vectors {
        Vectors::F16(d) => d.extend_from_slice(
            values
                .as_primitive_opt::<Float16Type>()
                .ok_or("embedding is not f16 as the manifest says")?
                .values(),
        ),
        Vectors::F32(d) => d.extend_from_slice(
            values
                .as_primitive_opt::<Float32Type>()
                .ok_or("embedding is not f32 as the manifest says")?
                .values(),
        ),
    }
    for i in 0..b.num_rows() {
        rows.meta.push(FileMeta {
            path: path.value(i).to_string(),
            size: size.value(i),
            mtime_ns: mtime.value(i),
            hash: hash.value(i).to_string(),
        });
    }
    if rows.vectors.len_values() != rows.meta.len() * rows.dim {
        return Err("embedding values and rows disagree".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserving_more_rows_than_memory_holds_is_only_a_hint() {
        let meta = |k: u64| FileMeta {
            path: format!("{k}.png"),
            size: k,
            mtime_ns: 0,
            hash: String::new(),
        };
        for kind in [VectorType::F16, VectorType::F32] {
            let mut rows = Rows::new(4, kind);
            // A manifest could claim any row count; the reservation must not abort.
            rows.reserve(usize::MAX / 2);
            rows.reserve(1 << 50);
            rows.reserve(3);
            rows.push(meta(1), &[1.0, 0.0, 0.0, 0.0]);
            rows.push(meta(2), &[0.0, 0.5, 0.0, 0.0]);
            assert_eq!(rows.len(), 2);
            assert_eq!(rows.row_f32(1), vec![0.0, 0.5, 0.0, 0.0]);
        }
    }
}
