//! Checks a `torch.save` zip archive before candle's pickle reader sees it. That reader trusts
//! the file: it allocates whatever a string length or tensor shape says before reading the
//! bytes, and drops nested objects recursively, so a corrupt or hostile `.bin` could ask for
//! gigabytes or overflow the stack. Here every length is checked against the bytes that are
//! really there, nesting is bounded, and each tensor's extent must fit its storage entry.

use std::io::Read;
use std::path::Path;

/// Deeper than any checkpoint (a state dict is a few levels; a pickled `nn.Module` adds about
/// three per submodule) and far below what a recursive drop can take.
const MAX_NESTING: usize = 256;

/// The problem with an archive, in words for a `BadWeights` error.
pub type Problem = String;

/// Checks the archive at `path`: each `data.pkl` is a well-formed pickle, and every storage
/// entry it can name is no larger than the archive could hold.
pub fn check_archive(path: &Path) -> Result<(), Problem> {
    let file_len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("not a readable zip archive: {e}"))?;
    let mut pickles = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| format!("zip entry {i}: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("zip entry {i}: {e}"))?
            .into_owned();
        if entry.compression() != zip::CompressionMethod::Stored {
            return Err(format!(
                "zip entry {name} is compressed; torch.save stores entries uncompressed"
            ));
        }
        let limit = file_len;
        if entry.size() > limit {
            return Err(format!(
                "zip entry {name} claims {} bytes, more than the archive can hold",
                entry.size()
            ));
        }
        if name.ends_with("data.pkl") {
            pickles += 1;
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry
                .take(limit)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{name}: {e}"))?;
            check_pickle(&bytes).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    if pickles == 0 {
        return Err("the zip archive has no data.pkl: it is not a torch.save file".into());
    }
    Ok(())
}

/// Tensors viewing one storage are each read into their own copy; real checkpoints share a
/// little (tied embeddings), so their copies stay within a few times the file.
const MAX_COPY_FACTOR: u64 = 8;
/// Small files may repeat views more often; this much is harmless whatever the file.
const COPY_SLACK: u64 = 256 << 20;

/// Checks that each tensor's bytes lie inside its storage entry and that all of them together
/// stay within [`MAX_COPY_FACTOR`] times the archive (plus [`COPY_SLACK`]), so reading
/// allocates in proportion to the file. `extents` holds (storage entry path, bytes the tensor reaches) per tensor.
pub fn check_extents(path: &Path, extents: &[(String, u64)]) -> Result<(), Problem> {
    let file_len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    let total = extents.iter().fold(0u64, |n, e| n.saturating_add(e.1));
    if total
        > file_len
            .saturating_mul(MAX_COPY_FACTOR)
            .saturating_add(COPY_SLACK)
    {
        return Err(format!(
            "its tensors read {total} bytes from a {file_len}-byte file (many views of shared storage); save them as separate tensors or as safetensors"
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("not a readable zip archive: {e}"))?;
    for (entry_path, reach) in extents {
        let size = zip
            .by_name(entry_path)
            .map_err(|e| format!("tensor storage {entry_path}: {e}"))?
            .size();
        if *reach > size {
            return Err(format!(
                "a tensor needs {reach} bytes of {entry_path}, which holds {size}"
            ));
        }
    }
    Ok(())
}

/// How an opcode's argument is laid out.
enum Arg {
    None,
    Fixed(usize),
    /// A little-endian length of this many bytes, then that many bytes.
    Counted(usize),
    /// Text up to a newline, this many times.
    Lines(usize),
}

/// What an opcode does to the stack, in terms of nesting depth.
enum Effect {
    /// Pushes a value that holds nothing.
    Leaf,
    /// Pops this many values and pushes one that holds them.
    Wrap(usize),
    /// Pops the values down to the last mark and pushes one that holds them.
    WrapMark,
    /// Pops this many values into the value below them.
    Into(usize),
    /// Pops the values down to the last mark into the value below it.
    IntoMark,
    Pop,
    PopMark,
    Dup,
    Mark,
    Put,
    Get,
    /// Leaves the stack as it is.
    Same,
    Stop,
}

fn opcode(op: u8) -> Option<(Arg, Effect)> {
    use Arg::*;
    use Effect::*;
    Some(match op {
        0x80 => (Fixed(1), Same),                                    // PROTO
        0x95 => (Fixed(8), Same),                                    // FRAME
        b'.' => (None, Stop),                                        // STOP
        b'(' => (None, Mark),                                        // MARK
        b'0' => (None, Pop),                                         // POP
        b'1' => (None, PopMark),                                     // POP_MARK
        b'2' => (None, Dup),                                         // DUP
        b'N' | 0x88 | 0x89 => (None, Leaf),                          // NONE, NEWTRUE, NEWFALSE
        b'J' => (Fixed(4), Leaf),                                    // BININT
        b'K' => (Fixed(1), Leaf),                                    // BININT1
        b'M' => (Fixed(2), Leaf),                                    // BININT2
        b'G' => (Fixed(8), Leaf),                                    // BINFLOAT
        0x82 => (Fixed(1), Leaf),                                    // EXT1
        0x83 => (Fixed(2), Leaf),                                    // EXT2
        0x84 => (Fixed(4), Leaf),                                    // EXT4
        0x8a => (Counted(1), Leaf),                                  // LONG1
        0x8b => (Counted(4), Leaf),                                  // LONG4
        b'X' | b'T' | b'B' => (Counted(4), Leaf), // BINUNICODE, BINSTRING, BINBYTES
        0x8c | b'U' | b'C' => (Counted(1), Leaf), // SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES
        0x8d | 0x8e | 0x96 => (Counted(8), Leaf), // BINUNICODE8, BINBYTES8, BYTEARRAY8
        b'I' | b'L' | b'F' | b'S' | b'V' | b'P' => (Lines(1), Leaf), // text forms, PERSID
        b'c' => (Lines(2), Leaf),                 // GLOBAL
        b')' | b']' | b'}' | 0x8f => (None, Wrap(0)), // empty tuple, list, dict, set
        0x85 => (None, Wrap(1)),                  // TUPLE1
        0x86 => (None, Wrap(2)),                  // TUPLE2
        0x87 => (None, Wrap(3)),                  // TUPLE3
        b't' | b'l' | b'd' | 0x91 => (None, WrapMark), // TUPLE, LIST, DICT, FROZENSET
        b'o' => (None, WrapMark),                 // OBJ
        b'i' => (Lines(2), WrapMark),             // INST
        b'Q' => (None, Wrap(1)),                  // BINPERSID
        b'R' | 0x81 | 0x93 => (None, Wrap(2)),    // REDUCE, NEWOBJ, STACK_GLOBAL
        0x92 => (None, Wrap(3)),                  // NEWOBJ_EX
        b'a' | b'b' => (None, Into(1)),           // APPEND, BUILD
        b's' => (None, Into(2)),                  // SETITEM
        b'e' | b'u' | 0x90 => (None, IntoMark),   // APPENDS, SETITEMS, ADDITEMS
        b'p' => (Lines(1), Put),                  // PUT
        b'q' => (Fixed(1), Put),                  // BINPUT
        b'r' => (Fixed(4), Put),                  // LONG_BINPUT
        0x94 => (None, Put),                      // MEMOIZE
        b'g' => (Lines(1), Get),                  // GET
        b'h' => (Fixed(1), Get),                  // BINGET
        b'j' => (Fixed(4), Get),                  // LONG_BINGET
        0x97 => (None, Leaf),                     // NEXT_BUFFER
        0x98 => (None, Same),                     // READONLY_BUFFER
        _ => return Option::None,
    })
}

/// What a value on the pickle stack stands for: how deep it nests and how many objects candle
/// builds for it (a memo read copies its whole object).
#[derive(Clone, Copy, Default)]
struct Shape {
    depth: usize,
    objects: u64,
}

/// Pops the values down to the last mark; returns their combined shape.
fn pop_to_mark(stack: &mut Vec<Shape>, marks: &mut Vec<usize>) -> Option<Shape> {
    let mark = marks.pop()?;
    let popped = stack.get(mark..)?;
    let shape = Shape {
        depth: popped.iter().map(|v| v.depth).max().unwrap_or(0),
        objects: popped.iter().fold(0u64, |n, v| n.saturating_add(v.objects)),
    };
    stack.truncate(mark);
    Some(shape)
}

/// Walks a pickle's opcodes without building anything: every argument must lie inside the
/// data, the stack and marks must balance, nesting must stay within [`MAX_NESTING`], the
/// objects built (memo reads copy theirs) within a bound proportional to the data, and the
/// pickle must end with STOP.
pub fn check_pickle(data: &[u8]) -> Result<(), Problem> {
    let corrupt = |pos: usize, what: &str| Err(format!("corrupt pickle at byte {pos}: {what}"));
    let max_objects = (data.len() as u64).saturating_mul(64).max(1 << 20);
    let mut stack: Vec<Shape> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: std::collections::HashMap<u64, Shape> = Default::default();
    let mut built: u64 = 0;
    let mut pos = 0;
    while pos < data.len() {
        let at = pos;
        let op = data[pos];
        pos += 1;
        let Some((arg, effect)) = opcode(op) else {
            return corrupt(at, &format!("unknown opcode 0x{op:02x}"));
        };
        let rest = data.len() - pos;
        let mut memo_key = 0u64;
        match arg {
            Arg::None => {}
            Arg::Fixed(n) => {
                if n > rest {
                    return corrupt(at, "argument runs past the end");
                }
                memo_key = data[pos..pos + n]
                    .iter()
                    .rev()
                    .fold(0, |k, &b| (k << 8) | u64::from(b));
                pos += n;
            }
            Arg::Counted(width) => {
                if width > rest {
                    return corrupt(at, "length runs past the end");
                }
                let len = data[pos..pos + width]
                    .iter()
                    .rev()
                    .fold(0u64, |k, &b| (k << 8) | u64::from(b));
                pos += width;
                // BINSTRING's and LONG4's lengths are signed.
                let negative = width == 4 && matches!(op, b'T' | 0x8b) && len >= 1 << 31;
                if negative || len > (data.len() - pos) as u64 {
                    return corrupt(at, &format!("a length of {len} runs past the end"));
                }
                pos += len as usize;
            }
            Arg::Lines(n) => {
                for _ in 0..n {
                    let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') else {
                        return corrupt(at, "text argument without a newline");
                    };
                    memo_key = std::str::from_utf8(&data[pos..pos + nl])
                        .ok()
                        .and_then(|t| t.trim().parse().ok())
                        .unwrap_or(u64::MAX);
                    pos += nl + 1;
                }
            }
        }
        let leaf = Shape {
            depth: 0,
            objects: 1,
        };
        let made = match effect {
            Effect::Leaf => {
                stack.push(leaf);
                leaf
            }
            Effect::Wrap(n) | Effect::Into(n)
                if stack.len() < n + usize::from(matches!(effect, Effect::Into(_))) =>
            {
                return corrupt(at, "stack underflow");
            }
            Effect::Wrap(n) => {
                let mut parts = stack.split_off(stack.len() - n);
                parts.push(Shape::default());
                let shape = Shape {
                    depth: parts.iter().map(|v| v.depth).max().unwrap_or(0) + 1,
                    objects: parts.iter().fold(1u64, |k, v| k.saturating_add(v.objects)),
                };
                stack.push(shape);
                Shape {
                    depth: shape.depth,
                    objects: 1,
                }
            }
            Effect::WrapMark => {
                let Some(parts) = pop_to_mark(&mut stack, &mut marks) else {
                    return corrupt(at, "no mark to collect to");
                };
                let shape = Shape {
                    depth: parts.depth + 1,
                    objects: parts.objects.saturating_add(1),
                };
                stack.push(shape);
                Shape {
                    depth: shape.depth,
                    objects: 1,
                }
            }
            Effect::Into(n) => {
                let parts = stack.split_off(stack.len() - n);
                let top = stack.last_mut().expect("checked above");
                top.depth = top
                    .depth
                    .max(parts.iter().map(|v| v.depth).max().unwrap_or(0) + 1);
                top.objects = parts
                    .iter()
                    .fold(top.objects, |k, v| k.saturating_add(v.objects));
                Shape {
                    depth: top.depth,
                    objects: 0,
                }
            }
            Effect::IntoMark => {
                let Some(parts) = pop_to_mark(&mut stack, &mut marks) else {
                    return corrupt(at, "no mark to collect to");
                };
                let Some(top) = stack.last_mut() else {
                    return corrupt(at, "stack underflow");
                };
                top.depth = top.depth.max(parts.depth + 1);
                top.objects = top.objects.saturating_add(parts.objects);
                Shape {
                    depth: top.depth,
                    objects: 0,
                }
            }
            Effect::Pop => {
                if stack.pop().is_none() {
                    return corrupt(at, "stack underflow");
                }
                Shape::default()
            }
            Effect::PopMark => {
                if pop_to_mark(&mut stack, &mut marks).is_none() {
                    return corrupt(at, "no mark to pop");
                }
                Shape::default()
            }
            Effect::Dup => {
                let Some(&top) = stack.last() else {
                    return corrupt(at, "stack underflow");
                };
                stack.push(top);
                top
            }
            Effect::Mark => {
                marks.push(stack.len());
                Shape::default()
            }
            Effect::Put => {
                let Some(&top) = stack.last() else {
                    return corrupt(at, "stack underflow");
                };
                let key = if op == 0x94 {
                    memo.len() as u64
                } else {
                    memo_key
                };
                memo.insert(key, top);
                Shape::default()
            }
            Effect::Get => {
                let Some(&shape) = memo.get(&memo_key) else {
                    return corrupt(at, "memo entry read before it was written");
                };
                stack.push(shape);
                shape
            }
            Effect::Same => Shape::default(),
            Effect::Stop => {
                if stack.len() != 1 || !marks.is_empty() {
                    return corrupt(at, "STOP with an unbalanced stack");
                }
                return Ok(());
            }
        };
        built = built.saturating_add(made.objects);
        if made.depth > MAX_NESTING {
            return Err(format!(
                "the pickle nests objects deeper than {MAX_NESTING} levels (at byte {at}), more than clipguide reads; save the state dict alone, or as safetensors"
            ));
        }
        if built > max_objects {
            return Err(format!(
                "the pickle would build more than {max_objects} objects (at byte {at}: memo references copy their object each time), more than clipguide reads; save the state dict alone, or as safetensors"
            ));
        }
    }
    Err("corrupt pickle: it ends without STOP".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_pickles_pass() {
        // pickle.dumps({"a": (1, 2.5)}, protocol=2)
        let p =
            b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01G@\x04\x00\x00\x00\x00\x00\x00\x86q\x02s.";
        assert_eq!(check_pickle(p), Ok(()));
    }

    #[test]
    fn copies_of_shared_storage_are_bounded_by_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        std::fs::write(&path, vec![0u8; 1000]).unwrap();
        let views = |n: usize| vec![("archive/data/0".to_string(), 4_000_000u64); n];
        let e = check_extents(&path, &views(100)).unwrap_err();
        assert!(e.contains("400000000 bytes from a 1000-byte file"), "{e}");
    }

    #[test]
    fn lengths_past_the_end_nesting_and_balance_are_refused() {
        let huge_string = b"\x80\x02X\x01\x00\x00\xd8abc.";
        assert!(check_pickle(huge_string)
            .unwrap_err()
            .contains("runs past the end"));
        let mut deep = b"\x80\x02)".to_vec();
        deep.extend(std::iter::repeat_n(0x85u8, 300));
        deep.push(b'.');
        assert!(check_pickle(&deep).unwrap_err().contains("deeper than 256"));
        // Each level pairs the memoised object with itself: 40 levels would be 2^40 copies.
        let mut doubling = b"\x80\x02)\x94".to_vec();
        for level in 0..40u32 {
            doubling.extend([b'h', level as u8, b'h', level as u8, 0x86, 0x94]);
        }
        doubling.push(b'.');
        assert!(check_pickle(&doubling).unwrap_err().contains("objects"));
        assert!(check_pickle(b"\x80\x02K\x01K\x02.")
            .unwrap_err()
            .contains("unbalanced"));
        assert!(check_pickle(b"\x80\x02s.")
            .unwrap_err()
            .contains("underflow"));
        assert!(check_pickle(b"\x80\x02h\x05.")
            .unwrap_err()
            .contains("memo"));
        assert!(check_pickle(b"\x80\x02N")
            .unwrap_err()
            .contains("without STOP"));
        assert!(check_pickle(b"\x80\x02\xff.")
            .unwrap_err()
            .contains("unknown opcode"));
    }
}
