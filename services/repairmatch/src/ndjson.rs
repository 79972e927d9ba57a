//! The catalog interchange format: NDJSON, one message per line in the proto3
//! JSON mapping. A centers file holds `RepairCenter` lines, a brands file
//! `Brand` lines and a banks file `Bank` lines.
//!
//! Reading validates every line and reports every bad one with its file and
//! line number; a caller commits a file only when it is clean (and drops what
//! it was handed of a bad one), so nothing of a bad file is ever half-applied.

use std::collections::hash_map::Entry;
use std::fmt;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use repairmatch_core::model::{Bank, Brand, RepairCenter, match_key};
use repairmatch_proto::v1 as pb;
use serde::de::DeserializeOwned;
use tonic_types::FieldViolation;

use crate::batches;
use crate::convert::{self, Limits};

/// About this many bytes of whole lines are parsed and converted together,
/// on every core: some 4,000 centers.
const BATCH_BYTES: usize = 8 << 20;

/// The most problems one report lists; the rest are counted.
const MAX_REPORTED_PROBLEMS: usize = 50;

/// A problem on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum NdjsonError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Some lines are bad; nothing of the file may be applied.
    #[error("{}", InvalidReport { path, problems, total: *total })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The first problems, by line.
        problems: Vec<LineProblem>,
        /// How many lines are bad in all.
        total: usize,
    },
}

struct InvalidReport<'a> {
    path: &'a Path,
    problems: &'a [LineProblem],
    total: usize,
}

impl fmt::Display for InvalidReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} bad line(s); nothing was imported", self.path.display(), self.total)?;
        for problem in self.problems {
            writeln!(f, "  {}:{}: {}", self.path.display(), problem.line, problem.message)?;
        }
        if self.total > self.problems.len() {
            writeln!(f, "  … and {} more", self.total - self.problems.len())?;
        }
        Ok(())
    }
}

/// Reads and validates a file of messages `M`, converting each with `convert`
/// and keying it with `key` to refuse duplicates. Lines are parsed and
/// converted on every core, a batch at a time, and judged in file order;
/// `sink` gets each batch's records, in order, up to the batch that holds
/// the first bad line (none of that one), and runs while the next batch is
/// parsed. A bad file ends in
/// [`NdjsonError::Invalid`] once every line is read: whatever `sink` got of it
/// must then be discarded.
fn read_file_into<M, T, E>(
    path: &Path,
    batch_bytes: usize,
    convert: impl Fn(M) -> Result<T, Vec<FieldViolation>> + Sync,
    key: impl Fn(&T) -> String,
    mut sink: impl FnMut(Vec<T>) -> Result<(), E>,
) -> Result<(), E>
where
    M: DeserializeOwned,
    T: Send,
    E: From<NdjsonError>,
{
    let io_error = |source| E::from(NdjsonError::Io { path: path.to_owned(), source });
    let mut blocks = LineBlocks::new(std::fs::File::open(path).map_err(io_error)?, batch_bytes);
    let mut first_line_of: foldhash::HashMap<String, usize> = foldhash::HashMap::default();
    let mut problems = Vec::new();
    let mut total = 0;
    let mut line_number = 0;
    // This thread only reads blocks: splitting them into lines, checking
    // their UTF-8 and parsing them is the pool's, which had waited on this
    // thread copying every line into a string of its own.
    let read_batch = || -> Result<Vec<Vec<u8>>, E> { Ok(blocks.next_block().map_err(io_error)?.into_iter().collect()) };
    let parse_line = |line: &[u8]| -> Option<Result<T, String>> {
        let Ok(line) = std::str::from_utf8(line) else {
            return Some(Err("not valid UTF-8".to_owned()));
        };
        (!line.trim().is_empty()).then(|| {
            serde_json::from_str::<M>(line)
                .map_err(|e| format!("not a valid message: {e}"))
                .and_then(|message| convert(message).map_err(|v| convert::describe(&v)))
        })
    };
    let parse_batch = |batch: &[Vec<u8>]| -> Vec<Option<Result<T, String>>> {
        let mut parsed = Vec::new();
        for block in batch {
            let lines = block.strip_suffix(b"\n").unwrap_or(block);
            parsed.par_extend(lines.par_split(|byte| *byte == b'\n').map(parse_line));
        }
        parsed
    };
    let judge_batch = |parsed: Vec<Option<Result<T, String>>>| {
        let mut records = Vec::with_capacity(parsed.len());
        for outcome in parsed {
            line_number += 1;
            let Some(outcome) = outcome else { continue };
            let outcome = outcome.and_then(|record| match first_line_of.entry(key(&record)) {
                Entry::Occupied(first) => Err(format!("duplicate of line {}", first.get())),
                Entry::Vacant(first) => {
                    first.insert(line_number);
                    Ok(record)
                }
            });
            match outcome {
                Ok(record) => records.push(record),
                Err(message) => {
                    total += 1;
                    if problems.len() < MAX_REPORTED_PROBLEMS {
                        problems.push(LineProblem { line: line_number, message });
                    }
                }
            }
        }
        // Past a bad line the file will not be applied: nothing more to write.
        if total == 0 { sink(records) } else { Ok(()) }
    };
    batches::read_ahead(read_batch, parse_batch, judge_batch)?;
    if total > 0 {
        return Err(NdjsonError::Invalid { path: path.to_owned(), problems, total }.into());
    }
    Ok(())
}

/// A file read in blocks of whole lines, about `batch_bytes` each: a block
/// ends at the last line end read once it holds that many bytes (what was
/// read past it starts the next), and the last block may end without one.
struct LineBlocks<R> {
    source: R,
    batch_bytes: usize,
    /// What was read past the last block's final line end.
    carried: Vec<u8>,
    at_end: bool,
}

impl<R: Read> LineBlocks<R> {
    fn new(source: R, batch_bytes: usize) -> Self {
        Self { source, batch_bytes: batch_bytes.max(1), carried: Vec::new(), at_end: false }
    }

    /// The next block, or none once the file is read.
    fn next_block(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut block = std::mem::take(&mut self.carried);
        block.reserve(self.batch_bytes);
        // A line longer than a batch makes its block longer.
        let mut searched = 0;
        let last_line_end = loop {
            if let Some(end) = block[searched..].iter().rposition(|byte| *byte == b'\n')
                && block.len() >= self.batch_bytes
            {
                break Some(searched + end);
            }
            if self.at_end {
                break None;
            }
            searched = block.len();
            let wanted = self.batch_bytes.saturating_sub(block.len()).max(4 << 10);
            if (&mut self.source).take(wanted as u64).read_to_end(&mut block)? == 0 {
                self.at_end = true;
            }
        };
        if let Some(end) = last_line_end {
            self.carried = block.split_off(end + 1);
        }
        Ok((!block.is_empty()).then_some(block))
    }
}

/// [`read_file_into`] a vector.
fn read_file<M, T>(
    path: &Path,
    convert: impl Fn(M) -> Result<T, Vec<FieldViolation>> + Sync,
    key: impl Fn(&T) -> String,
) -> Result<Vec<T>, NdjsonError>
where
    M: DeserializeOwned,
    T: Send,
{
    let mut records = Vec::new();
    read_file_into(path, BATCH_BYTES, convert, key, |batch| {
        records.extend(batch);
        Ok::<_, NdjsonError>(())
    })?;
    Ok(records)
}

/// Reads a file of `RepairCenter` lines.
pub fn read_centers(path: &Path) -> Result<Vec<RepairCenter>, NdjsonError> {
    read_file(path, center_from_line, |c| c.id.clone())
}

/// Reads a file of `RepairCenter` lines into `sink`, a batch at a time, as
/// [`read_file_into`] says: on an error, discard what `sink` got.
pub fn read_centers_into<E: From<NdjsonError>>(
    path: &Path,
    sink: impl FnMut(Vec<RepairCenter>) -> Result<(), E>,
) -> Result<(), E> {
    read_file_into(path, BATCH_BYTES, center_from_line, |c| c.id.clone(), sink)
}

fn center_from_line(message: pb::RepairCenter) -> Result<RepairCenter, Vec<FieldViolation>> {
    convert::center_from_proto(message, "", Limits::Api)
}

/// Reads a file of `Brand` lines.
pub fn read_brands(path: &Path) -> Result<Vec<Brand>, NdjsonError> {
    read_file(path, |m: pb::Brand| convert::brand_from_proto(&m, "", Limits::Api), |b| match_key(&b.name))
}

/// Reads a file of `Bank` lines.
pub fn read_banks(path: &Path) -> Result<Vec<Bank>, NdjsonError> {
    read_file(path, |m: pb::Bank| convert::bank_from_proto(&m, "", Limits::Api), |b| b.id.clone())
}

/// Writes messages, one JSON line each.
pub fn write_lines<M: serde::Serialize>(
    path: &Path,
    messages: impl IntoIterator<Item = M>,
) -> Result<usize, NdjsonError> {
    let io_error = |source| NdjsonError::Io { path: path.to_owned(), source };
    let mut writer = BufWriter::new(std::fs::File::create(path).map_err(io_error)?);
    let mut count = 0;
    for message in messages {
        serde_json::to_writer(&mut writer, &message).map_err(|e| io_error(e.into()))?;
        writer.write_all(b"\n").map_err(io_error)?;
        count += 1;
    }
    writer.flush().map_err(io_error)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use repairmatch_datagen as datagen;

    use super::*;

    #[test]
    fn centers_round_trip_through_ndjson() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("centers.ndjson");
        let centers = datagen::generate(200, 5).centers;
        write_lines(&path, centers.iter().map(convert::center_to_proto)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().next().unwrap().contains("\"serviceModes\":[\"SERVICE_MODE_"), "proto3 JSON names");
        assert_eq!(read_centers(&path).unwrap(), centers);
    }

    #[test]
    fn blocks_hold_whole_lines_and_together_the_whole_file() {
        let mut random = fastrand::Rng::with_seed(4);
        for _ in 0..200 {
            let lines = random.usize(0..40);
            let mut file: Vec<u8> = Vec::new();
            for _ in 0..lines {
                file.extend(std::iter::repeat_n(b'x', random.usize(0..30)));
                file.push(b'\n');
            }
            if random.bool() {
                file.extend(b"no line end at the end");
            }
            let batch_bytes = random.usize(0..100);
            let mut reader = LineBlocks::new(file.as_slice(), batch_bytes);
            let mut blocks = Vec::new();
            while let Some(block) = reader.next_block().unwrap() {
                blocks.push(block);
            }
            assert_eq!(blocks.concat(), file, "batches of {batch_bytes} bytes");
            for block in blocks.iter().rev().skip(1) {
                assert!(block.ends_with(b"\n"), "only the last block may end mid-line");
                assert!(!block.is_empty());
            }
        }
    }

    #[test]
    fn crlf_line_ends_a_last_line_without_one_and_bad_utf8_are_read_as_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("centers.ndjson");
        let lines: Vec<Vec<u8>> = datagen::generate(4, 5)
            .centers
            .iter()
            .map(|c| serde_json::to_vec(&convert::center_to_proto(c)).unwrap())
            .collect();
        let file =
            [&lines[0][..], b"\r\n", &lines[1], b"\r\n\r\n", b"{\"id\":\"\xff\"}\n", &lines[2], b"\n", &lines[3]];
        std::fs::write(&path, file.concat()).unwrap();
        let NdjsonError::Invalid { problems, total, .. } = read_centers(&path).unwrap_err() else { panic!() };
        assert_eq!(total, 1);
        assert_eq!(problems, [LineProblem { line: 4, message: "not valid UTF-8".to_owned() }]);
        let file = [&lines[0][..], b"\r\n", &lines[1], b"\r\n\r\n", &lines[2], b"\n", &lines[3]];
        std::fs::write(&path, file.concat()).unwrap();
        let ids: Vec<String> = read_centers(&path).unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("centers.ndjson");
        let mut lines: Vec<String> = datagen::generate(5, 5)
            .centers
            .iter()
            .map(|c| serde_json::to_string(&convert::center_to_proto(c)).unwrap())
            .collect();
        lines[1] = lines[1].replace("\"location\":{\"latitude\":", "\"location\":{\"latitude\":95,\"x\":");
        lines[3] = "{not json".to_owned();
        lines.push(lines[0].clone());
        lines.push(String::new());
        lines.push(lines[0].clone());
        std::fs::write(&path, lines.join("\n")).unwrap();
        let NdjsonError::Invalid { problems, total, .. } = read_centers(&path).unwrap_err() else { panic!() };
        assert_eq!(total, 4);
        let numbers: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(numbers, [2, 4, 6, 8], "a blank line still counts");
        assert!(problems[2].message.contains("duplicate of line 1"));
        assert!(problems[3].message.contains("duplicate of line 1"), "{}", problems[3].message);
    }

    /// Reads a centers file in batches of about `batch_bytes`: the size of
    /// each batch the sink got, their ids, and how the read ended.
    fn read_in_batches(path: &Path, batch_bytes: usize) -> (Vec<usize>, Vec<String>, Result<(), NdjsonError>) {
        let (mut sizes, mut ids) = (Vec::new(), Vec::new());
        let ended = read_file_into(
            path,
            batch_bytes,
            center_from_line,
            |c| c.id.clone(),
            |batch| {
                sizes.push(batch.len());
                ids.extend(batch.into_iter().map(|c| c.id));
                Ok::<_, NdjsonError>(())
            },
        );
        (sizes, ids, ended)
    }

    #[test]
    fn a_sink_gets_the_good_batches_in_order_until_the_first_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("centers.ndjson");
        let centers = datagen::generate(300, 5).centers;
        write_lines(&path, centers.iter().map(convert::center_to_proto)).unwrap();
        let all_ids: Vec<String> = centers.iter().map(|c| c.id.clone()).collect();
        let (sizes, ids, ended) = read_in_batches(&path, 64 << 10);
        ended.unwrap();
        assert!(sizes.len() > 3, "{sizes:?}");
        assert_eq!(ids, all_ids);

        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[sizes[0] + 1] = "{not json";
        std::fs::write(&path, lines.join("\n")).unwrap();
        let (_, ids, ended) = read_in_batches(&path, 64 << 10);
        let error = ended.unwrap_err();
        assert!(matches!(error, NdjsonError::Invalid { total: 1, .. }), "{error}");
        assert_eq!(ids, all_ids[..sizes[0]], "only the batch before the bad line, in file order");
    }

    #[test]
    fn lines_read_in_batches_keep_their_order_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("centers.ndjson");
        let centers = datagen::generate(300, 5).centers;
        write_lines(&path, centers.iter().map(convert::center_to_proto)).unwrap();
        let (sizes, _, ended) = read_in_batches(&path, 64 << 10);
        ended.unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let bad_in_the_second_batch = sizes[0] + 7;
        lines[bad_in_the_second_batch - 1] = "{not json";
        let first = lines[0];
        lines.push(first);
        std::fs::write(&path, lines.join("\n")).unwrap();
        let (_, _, ended) = read_in_batches(&path, 64 << 10);
        let NdjsonError::Invalid { problems, total, .. } = ended.unwrap_err() else { panic!() };
        assert_eq!(total, 2);
        assert_eq!(problems[0].line, bad_in_the_second_batch);
        assert_eq!(problems[1].line, centers.len() + 1);
        assert!(problems[1].message.contains("duplicate of line 1"), "{}", problems[1].message);
    }
}
