//! Plans and checks builds: a dependency graph, parsers, hashing, file walks.
use itertools::Itertools;
use pest::Parser;
use petgraph::graph::DiGraph;
use rand::Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::io::Write;

#[derive(pest_derive::Parser)]
#[grammar_inline = "dep = { name ~ \"->\" ~ name }\nname = @{ ASCII_ALPHANUMERIC+ }\nWHITESPACE = _{ \" \" }"]
pub struct DepParser;

/// Parses "a -> b" with pest.
pub fn parse_dep(s: &str) -> Option<(String, String)> {
    let mut pairs = DepParser::parse(Rule::dep, s).ok()?.next()?.into_inner();
    Some((pairs.next()?.as_str().into(), pairs.next()?.as_str().into()))
}

/// Parses "name@1.2" with nom.
pub fn parse_version(s: &str) -> nom::IResult<&str, (&str, u64, u64)> {
    use nom::{bytes::complete::{tag, take_while1}, character::complete::u64 as num};
    let (s, name) = take_while1(|c: char| c.is_alphanumeric() || c == '-')(s)?;
    let (s, _) = tag("@")(s)?;
    let (s, major) = num(s)?;
    let (s, _) = tag(".")(s)?;
    let (s, minor) = num(s)?;
    Ok((s, (name, major, minor)))
}

/// The build order of edges "a -> b" (b before a), or None on a cycle.
pub fn order(edges: &[(String, String)]) -> Option<Vec<String>> {
    let names: Vec<&String> = edges.iter().flat_map(|(a, b)| [a, b]).unique().collect();
    let mut g = DiGraph::<&str, ()>::new();
    let idx: Vec<_> = names.iter().map(|n| g.add_node(n.as_str())).collect();
    let at = |n: &String| idx[names.iter().position(|m| *m == n).unwrap()];
    for (a, b) in edges {
        g.add_edge(at(b), at(a), ());
    }
    let sorted = petgraph::algo::toposort(&g, None).ok()?;
    Some(sorted.into_iter().map(|i| g[i].to_string()).collect())
}

/// Hex SHA-256 of every input, in parallel.
pub fn digests(inputs: &[Vec<u8>]) -> Vec<String> {
    inputs.par_iter().map(|d| format!("{:x}", Sha256::digest(d))).collect()
}

/// Gzip of data.
pub fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    e.finish()
}

/// Files under root whose names match the glob, by two walkers.
pub fn find(root: &str, glob: &str) -> (usize, usize) {
    let set = globset::Glob::new(glob).map(|g| g.compile_matcher());
    let Ok(m) = set else { return (0, 0) };
    let a = walkdir::WalkDir::new(root).into_iter().flatten().filter(|e| m.is_match(e.file_name())).count();
    let b = ignore::Walk::new(root).flatten().filter(|e| m.is_match(e.file_name())).count();
    (a, b)
}

/// Words matching a pattern, and a random sample size.
pub fn words(text: &str) -> (usize, u32) {
    let re = regex::Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").unwrap();
    let r: num::rational::Ratio<i64> = num::rational::Ratio::new(1, 3);
    let n = re.find_iter(text).count();
    (n, rand::thread_rng().gen_range(0..=*r.denom() as u32))
}
