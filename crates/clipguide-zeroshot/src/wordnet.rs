//! First-sense glosses from an installed WordNet 3.0 database, read directly from its files (the
//! layout of Debian's `wordnet-base`, `/usr/share/wordnet`): `index.POS` has one sorted line per
//! lemma ending in its synsets' byte offsets, most frequent sense first; `data.POS` has the
//! synset line at that offset, whose gloss follows ` | `.

use crate::error::{io_err, Result, ZeroShotError};
use crate::prompts::ClassPrompt;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where Debian's `wordnet-base` installs the database.
pub const DEBIAN_DIR: &str = "/usr/share/wordnet";

/// Parts of speech searched, in order: a class name is most often a noun.
const POS: [&str; 4] = ["noun", "adj", "verb", "adv"];

#[derive(Debug, Clone)]
pub struct WordNet {
    dir: PathBuf,
    /// The parts of speech whose index and data files are both present.
    pos: Vec<&'static str>,
}

impl WordNet {
    /// Opens the database in `dir`; at least `index.noun` and `data.noun` must be there (other
    /// parts of speech are used when present).
    pub fn open(dir: &Path) -> Result<Self> {
        let has = |f: String| dir.join(f).is_file();
        let missing: Vec<String> = ["index.noun", "data.noun"]
            .iter()
            .filter(|f| !has(f.to_string()))
            .map(|f| f.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ZeroShotError::WordNetMissing {
                dir: dir.into(),
                missing,
            });
        }
        let pos = POS
            .into_iter()
            .filter(|p| has(format!("index.{p}")) && has(format!("data.{p}")))
            .collect();
        Ok(Self {
            dir: dir.into(),
            pos,
        })
    }

    /// The database where Debian installs it.
    pub fn debian() -> Result<Self> {
        Self::open(Path::new(DEBIAN_DIR))
    }

    /// The gloss of the first sense of `lemma` (the first part of speech that has it), without
    /// its quoted examples; `None` when WordNet does not know the word.
    pub fn gloss(&self, lemma: &str) -> Result<Option<String>> {
        let key = lemma.trim().to_lowercase().replace([' ', '-'], "_");
        if key.is_empty() {
            return Ok(None);
        }
        for pos in &self.pos {
            if let Some(offset) = self.first_offset(pos, &key)? {
                return self.gloss_at(pos, offset).map(Some);
            }
        }
        Ok(None)
    }

    /// The first synset offset of `key` in `index.POS`.
    fn first_offset(&self, pos: &str, key: &str) -> Result<Option<u64>> {
        let path = self.dir.join(format!("index.{pos}"));
        let file = std::fs::File::open(&path).map_err(io_err(&path))?;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io_err(&path))?;
            // License lines start with two spaces.
            if line.starts_with(' ') || line.split(' ').next() != Some(key) {
                continue;
            }
            let bad = |detail: &str| ZeroShotError::BadWordNet {
                path: path.clone(),
                detail: format!("line {}: {detail}", n + 1),
            };
            // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offset...
            let fields: Vec<&str> = line.split_whitespace().collect();
            let count = |i: usize| fields.get(i).and_then(|f| f.parse::<usize>().ok());
            let (Some(synsets), Some(pointers)) = (count(2), count(3)) else {
                return Err(bad("synset and pointer counts are not numbers"));
            };
            // Checked: the counts are the file's, and one near usize::MAX would overflow.
            let first = pointers
                .checked_add(4 + 2)
                .filter(|f| synsets > 0 && f.checked_add(synsets) == Some(fields.len()));
            let Some(first) = first else {
                return Err(bad("the field count does not match the counts it gives"));
            };
            return fields[first]
                .parse::<u64>()
                .map(Some)
                .map_err(|_| bad("a synset offset is not a number"));
        }
        Ok(None)
    }

    fn gloss_at(&self, pos: &str, offset: u64) -> Result<String> {
        let path = self.dir.join(format!("data.{pos}"));
        let mut file = std::fs::File::open(&path).map_err(io_err(&path))?;
        file.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
        let mut line = String::new();
        BufReader::new(file.by_ref())
            .read_line(&mut line)
            .map_err(io_err(&path))?;
        let bad = |detail: String| ZeroShotError::BadWordNet {
            path: path.clone(),
            detail,
        };
        if !line.starts_with(&format!("{offset:08}")) {
            return Err(bad(format!(
                "no synset starts at byte {offset}: the index and data files are from different WordNet versions"
            )));
        }
        let gloss = line
            .split_once(" | ")
            .map(|(_, g)| g.trim())
            .ok_or_else(|| bad(format!("the synset at byte {offset} has no gloss")))?;
        // The definition comes first; quoted usage examples follow it after "; ".
        let definition = gloss.split("; \"").next().unwrap_or(gloss).trim();
        let definition = definition.trim_end_matches(';').trim();
        // An empty definition would make a class prompt "label, " that a labels file refuses.
        if definition.is_empty() {
            return Err(bad(format!(
                "the synset at byte {offset} has an empty gloss"
            )));
        }
        Ok(definition.to_string())
    }

    /// Each label with its first-sense gloss as the definition; a label WordNet does not know is
    /// an error naming it.
    pub fn define(&self, labels: &[String]) -> Result<Vec<ClassPrompt>> {
        labels
            .iter()
            .map(|l| match self.gloss(l)? {
                Some(g) => Ok(ClassPrompt::with_definition(l, &g)),
                None => Err(ZeroShotError::NotInWordNet { label: l.clone() }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/fixtures/wordnet`: a few lemmas cut from WordNet 3.0 by
    /// `tools/make_wordnet_fixture.py`, in the installed files' format.
    fn fixture() -> WordNet {
        WordNet::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wordnet"))
            .unwrap()
    }

    #[test]
    fn first_sense_glosses_without_their_examples() {
        let wn = fixture();
        assert_eq!(
            wn.gloss("Circle").unwrap().as_deref(),
            Some("ellipse in which the two axes are of equal length; a plane curve generated by one point moving at a constant distance from a fixed point")
        );
        // A two-word label is looked up as WordNet writes it (plus_sign).
        assert_eq!(
            wn.gloss("plus sign").unwrap().as_deref(),
            Some("a sign indicating the operation of addition")
        );
        // Not a noun in the fixture: found among the adjectives.
        assert_eq!(
            wn.gloss("azure").unwrap().as_deref(),
            Some("of a deep somewhat purplish blue color similar to that of a clear October sky")
        );
        assert_eq!(wn.gloss("hexagon").unwrap(), None);
        let e = wn.define(&["disc".into(), "hexagon".into()]).unwrap_err();
        assert!(
            e.to_string().contains("\"hexagon\"") && e.to_string().contains("labels file"),
            "{e}"
        );
    }

    /// A database of one noun, `index` and `data` written as given.
    fn one_noun(index: &str, data: &str) -> (tempfile::TempDir, WordNet) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.noun"), index).unwrap();
        std::fs::write(dir.path().join("data.noun"), data).unwrap();
        let wn = WordNet::open(dir.path()).unwrap();
        (dir, wn)
    }

    #[test]
    fn counts_that_would_overflow_are_a_bad_line_not_a_panic() {
        let data = "00000000 05 n 01 disc 0 000 | a flat round object\n";
        let huge = usize::MAX;
        for index in [
            format!("disc n 1 {huge} 1 0 00000000\n"),
            format!("disc n {huge} 0 1 0 00000000\n"),
            format!("disc n {} 1 @ 1 0 00000000\n", huge - 6),
        ] {
            let (_dir, wn) = one_noun(&index, data);
            let e = wn.gloss("disc").unwrap_err().to_string();
            assert!(e.contains("line 1") && e.contains("field count"), "{e}");
        }
        // The same line with honest counts reads.
        let (_dir, wn) = one_noun("disc n 1 0 1 0 00000000\n", data);
        assert_eq!(
            wn.gloss("disc").unwrap().as_deref(),
            Some("a flat round object")
        );
    }

    #[test]
    fn an_empty_gloss_is_an_error_not_an_empty_definition() {
        for data in [
            "00000000 05 n 01 disc 0 000 | \n",
            "00000000 05 n 01 disc 0 000 | ;\n",
            "00000000 05 n 01 disc 0 000 | ; \"an example\"\n",
        ] {
            let (_dir, wn) = one_noun("disc n 1 0 1 0 00000000\n", data);
            let e = wn.gloss("disc").unwrap_err().to_string();
            assert!(
                e.contains("empty gloss") && e.contains("data.noun"),
                "{data:?}: {e}"
            );
        }
    }

    #[test]
    fn a_missing_database_names_the_files_and_the_package() {
        let dir = std::env::temp_dir().join("clipguide-no-wordnet-here");
        let e = WordNet::open(&dir).unwrap_err().to_string();
        assert!(
            e.contains("index.noun") && e.contains("data.noun") && e.contains("wordnet-base"),
            "{e}"
        );
    }
}
