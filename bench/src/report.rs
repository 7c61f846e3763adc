//! The results table of one run, from the files `bench/run.sh` leaves in its run directory:
//! `facts.env` (key=value), `wrk/<workload>.<target>.<round>.<part>.out`, `sweep.<target>.json`,
//! `search.<backend>.json` and an optional `profile.md`.

use crate::latency::{merged_percentile, WrkRun};
use anyhow::Context;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const TARGETS: [(&str, &str); 4] = [
    ("ceiling", "ceiling (bare axum + Ed25519, no storage)"),
    ("sqlite", "keyward, SQLite"),
    ("pg1", "keyward, PostgreSQL, 1 node"),
    ("pg2", "keyward, PostgreSQL, 2 nodes (summed)"),
];

/// Every run of one workload against one target, by round.
#[derive(Default)]
struct Runs {
    rounds: BTreeMap<u32, Vec<WrkRun>>,
}

impl Runs {
    fn all(&self) -> Vec<&WrkRun> {
        self.rounds.values().flatten().collect()
    }

    /// Requests per second of each round, the parts of a round (two nodes) summed.
    fn per_round(&self) -> BTreeMap<u32, f64> {
        self.rounds.iter().map(|(round, parts)| (*round, parts.iter().map(WrkRun::per_second).sum())).collect()
    }

    fn per_second(&self) -> f64 {
        let rounds = self.per_round();
        rounds.values().sum::<f64>() / rounds.len().max(1) as f64
    }

    fn percentile_ms(&self, percent: f64) -> f64 {
        merged_percentile(&self.all(), percent) / 1000.0
    }

    fn errors(&self) -> u64 {
        self.all().iter().map(|r| r.errors()).sum()
    }

    fn requests(&self) -> u64 {
        self.all().iter().map(|r| r.requests).sum()
    }

    fn bytes_per_answer(&self) -> f64 {
        self.all().iter().map(|r| r.bytes).sum::<u64>() as f64 / self.requests().max(1) as f64
    }
}

struct Run {
    facts: BTreeMap<String, String>,
    /// By workload, then target.
    wrk: BTreeMap<String, BTreeMap<String, Runs>>,
    dir: std::path::PathBuf,
}

impl Run {
    fn load(dir: &Path) -> anyhow::Result<Run> {
        let facts_text = std::fs::read_to_string(dir.join("facts.env"))
            .with_context(|| format!("cannot read {}/facts.env", dir.display()))?;
        let facts = facts_text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut wrk: BTreeMap<String, BTreeMap<String, Runs>> = BTreeMap::new();
        let wrk_dir = dir.join("wrk");
        if wrk_dir.is_dir() {
            for entry in std::fs::read_dir(&wrk_dir)? {
                let path = entry?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
                let Some(stem) = name.strip_suffix(".out") else { continue };
                let parts: Vec<&str> = stem.split('.').collect();
                let [workload, target, round, _part] = parts[..] else {
                    anyhow::bail!("unexpected wrk output name {name}");
                };
                let round: u32 = round.parse().with_context(|| format!("round of {name}"))?;
                let run = WrkRun::from_output(&path)?;
                let runs = wrk.entry(workload.to_owned()).or_default().entry(target.to_owned()).or_default();
                runs.rounds.entry(round).or_default().push(run);
            }
        }
        Ok(Run { facts, wrk, dir: dir.to_owned() })
    }

    fn fact(&self, key: &str) -> &str {
        self.facts.get(key).map_or("–", String::as_str)
    }

    fn json(&self, file: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
        serde_json::from_str(text.lines().last()?).ok()
    }

    /// CPU time the target's server processes used per request during its rounds (from /proc,
    /// so the load generator and the other processes on the machine are not counted).
    fn cpu_us_per_request(&self, workload: &str, target: &str) -> f64 {
        let Some(runs) = self.runs(workload, target) else { return f64::NAN };
        let tick_us = 1e6 / self.fact("clk_tck").parse::<f64>().unwrap_or(100.0);
        let ticks: Option<f64> = runs
            .rounds
            .keys()
            .map(|round| self.facts.get(&format!("cpu_ticks.{workload}.{target}.{round}"))?.parse::<f64>().ok())
            .sum();
        ticks.map_or(f64::NAN, |t| t * tick_us / runs.requests().max(1) as f64)
    }

    fn runs(&self, workload: &str, target: &str) -> Option<&Runs> {
        self.wrk.get(workload)?.get(target).filter(|r| !r.rounds.is_empty())
    }
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "**met**"
    } else {
        "**missed**"
    }
}

/// Writes `results.md` into the run directory and prints it; fails when any request errored.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    let run = Run::load(dir)?;
    let mut md = String::new();
    let n: f64 = run.fact("n").parse().unwrap_or(f64::NAN);
    writeln!(md, "### Run of {} — N = {} licenses", run.fact("date"), thousands(n))?;
    writeln!(md)?;
    writeln!(
        md,
        "Machine: {} × {} (`nproc` {}), {} RAM, {}; keyward at {}. Load: `{}` on the same machine, \
         `-t{} -c{}` per target (two nodes: two wrk processes at once, `-t1 -c{}` each); \
         {} round(s) of {} s per target, the targets taking turns round by round.",
        run.fact("cpu"),
        run.fact("nproc"),
        run.fact("nproc"),
        run.fact("mem_total"),
        run.fact("kernel"),
        run.fact("git"),
        run.fact("wrk_version"),
        run.fact("threads"),
        run.fact("connections"),
        run.fact("half_connections"),
        run.fact("rounds"),
        run.fact("duration"),
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "Load average (1, 5, 15 min) before the run: {}; after: {} (the benchmark itself keeps both cores busy; \
         other work on the machine comes on top, which is why numbers are read as ratios within one run).",
        run.fact("load_before"),
        run.fact("load_after")
    )?;
    writeln!(md)?;
    if let Some(note) = run.facts.get("pg") {
        if note != "yes" {
            writeln!(md, "PostgreSQL modes: {note}")?;
            writeln!(md)?;
        }
    }
    validate_table(&run, &mut md)?;
    activate_table(&run, &mut md)?;
    scale_table(&run, &mut md)?;
    search_table(&run, &mut md)?;
    let checks: Vec<String> =
        run.facts.iter().filter_map(|(k, v)| Some(format!("{} {v}", k.strip_prefix("write_check.")?))).collect();
    if !checks.is_empty() {
        writeln!(md, "Write check after the load (one activation per node, 201 expected): {}.", checks.join(", "))?;
        writeln!(md)?;
    }
    for extra in ["logs.md", "profile.md"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(extra)) {
            md.push_str(&text);
            writeln!(md)?;
        }
    }
    std::fs::write(dir.join("results.md"), &md)?;
    print!("{md}");
    let errors: Vec<String> = run
        .wrk
        .iter()
        .flat_map(|(workload, targets)| targets.iter().map(move |(target, runs)| (workload, target, runs)))
        .filter(|(_, _, runs)| runs.errors() > 0)
        .map(|(workload, target, runs)| format!("{workload} on {target}: {} errors", runs.errors()))
        .collect();
    let refused_writes = run
        .facts
        .iter()
        .filter(|(k, v)| k.starts_with("write_check.") && v.as_str() != "201")
        .map(|(k, v)| format!("{k}: {v}"));
    let errors: Vec<String> = errors.into_iter().chain(refused_writes).collect();
    anyhow::ensure!(errors.is_empty(), "requests failed during the run: {}", errors.join("; "));
    Ok(())
}

fn validate_table(run: &Run, md: &mut String) -> anyhow::Result<()> {
    let Some(ceiling) = run.runs("validate", "ceiling") else { return Ok(()) };
    writeln!(
        md,
        "#### Validate: `POST /api/v1/validate` with a random key of a {}-key sample (cached) and a nonce",
        thousands(run.fact("sample_keys").parse().unwrap_or(f64::NAN))
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "| target | req/s | × ceiling | p50 ms | × ceiling | p99 ms | × ceiling | server CPU µs/req | × ceiling \
         | bytes/answer | requests | errors |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let (c_rps, c_p50, c_p99) = (ceiling.per_second(), ceiling.percentile_ms(50.0), ceiling.percentile_ms(99.0));
    let c_cpu = run.cpu_us_per_request("validate", "ceiling");
    for (target, label) in TARGETS {
        let Some(runs) = run.runs("validate", target) else { continue };
        let (rps, p50, p99) = (runs.per_second(), runs.percentile_ms(50.0), runs.percentile_ms(99.0));
        let cpu = run.cpu_us_per_request("validate", target);
        writeln!(
            md,
            "| {label} | {} | {} | {p50:.2} | {} | {p99:.2} | {} | {cpu:.0} | {} | {:.0} | {} | {} |",
            thousands(rps),
            ratio(rps, c_rps),
            ratio(p50, c_p50),
            ratio(p99, c_p99),
            ratio(cpu, c_cpu),
            runs.bytes_per_answer(),
            thousands(runs.requests() as f64),
            runs.errors()
        )?;
    }
    writeln!(md)?;
    let ceiling_rounds = ceiling.per_round();
    for (target, label) in &TARGETS[1..] {
        let Some(runs) = run.runs("validate", target) else { continue };
        let per_round: Vec<String> = runs
            .per_round()
            .iter()
            .filter_map(|(round, rps)| ceiling_rounds.get(round).map(|c| ratio(*rps, *c)))
            .collect();
        writeln!(md, "- {label}: throughput ÷ ceiling per round: {}", per_round.join(", "))?;
    }
    if let Some(sqlite) = run.runs("validate", "sqlite") {
        let throughput = sqlite.per_second() / c_rps;
        let p99 = sqlite.percentile_ms(99.0) / c_p99;
        writeln!(
            md,
            "- Targets (SQLite): throughput ≥ 0.7 × ceiling: {:.2} → {}; p99 ≤ 2 × ceiling's: {:.2} → {}.",
            throughput,
            verdict(throughput >= 0.7),
            p99,
            verdict(p99 <= 2.0)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn activate_table(run: &Run, md: &mut String) -> anyhow::Result<()> {
    let Some(sqlite) = run.runs("activate", "sqlite") else { return Ok(()) };
    writeln!(
        md,
        "#### Activate: `POST /api/v1/activate`, a random key and a new device every request (a durable write)"
    )?;
    writeln!(md)?;
    writeln!(md, "| target | req/s | × SQLite | p50 ms | p99 ms | keyward CPU µs/req | requests | errors |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for (target, label) in &TARGETS[1..] {
        let Some(runs) = run.runs("activate", target) else { continue };
        writeln!(
            md,
            "| {label} | {} | {} | {:.2} | {:.2} | {:.0} | {} | {} |",
            thousands(runs.per_second()),
            ratio(runs.per_second(), sqlite.per_second()),
            runs.percentile_ms(50.0),
            runs.percentile_ms(99.0),
            run.cpu_us_per_request("activate", target),
            thousands(runs.requests() as f64),
            runs.errors()
        )?;
    }
    writeln!(md)?;
    let mut pg = Vec::new();
    for (target, label) in [("pg1", "1 node"), ("pg2", "2 nodes")] {
        for workload in ["validate", "activate"] {
            if let (Some(runs), Some(base)) = (run.runs(workload, target), run.runs(workload, "sqlite")) {
                pg.push(format!("{workload} {label} {}", ratio(runs.per_second(), base.per_second())));
            }
        }
    }
    if !pg.is_empty() {
        writeln!(md, "- PostgreSQL ÷ SQLite throughput, same run: {}.", pg.join("; "))?;
        writeln!(md)?;
    }
    Ok(())
}

fn scale_table(run: &Run, md: &mut String) -> anyhow::Result<()> {
    let pg = run.facts.get("pg").is_some_and(|v| v == "yes");
    writeln!(md, "#### Scale at N")?;
    writeln!(md)?;
    writeln!(md, "| measure | SQLite | PostgreSQL |")?;
    writeln!(md, "|---|---:|---:|")?;
    let both = |key: &str| {
        let pg_value = if pg { run.fact(&format!("pg.{key}")).to_owned() } else { "–".to_owned() };
        (run.fact(&format!("sqlite.{key}")).to_owned(), pg_value)
    };
    let (s, p) = both("generate_seconds");
    writeln!(md, "| `keyward generate` of N licenses (wall clock, s) | {s} | {p} |")?;
    let (s, p) = both("readyz_ms");
    writeln!(md, "| start to first `/readyz` 200 with N licenses (ms) | {s} | {p} |")?;
    let sweep = |file: &str| -> String {
        run.json(file).map_or("–".into(), |v| {
            format!(
                "{} keys in {:.1} s ({}/s)",
                thousands(v["keys"].as_f64().unwrap_or(f64::NAN)),
                v["seconds"].as_f64().unwrap_or(f64::NAN),
                thousands(v["per_second"].as_f64().unwrap_or(f64::NAN))
            )
        })
    };
    writeln!(
        md,
        "| cold validation sweep, 64 in flight (each key read from the database once) | {} | {} |",
        sweep("sweep.sqlite.json"),
        if pg { sweep("sweep.pg1.json") } else { "–".into() }
    )?;
    let (s, p) = both("settle_seconds");
    writeln!(md, "| idle again after the sweep: its history and counts written (s) | {s} | {p} |")?;
    let (s, p) = both("rss_idle_mb");
    writeln!(md, "| RSS after start, idle (MB) | {s} | {p} |")?;
    let (s, p) = both("rss_after_sweep_mb");
    writeln!(md, "| RSS after the sweep: every swept license cached (MB) | {s} | {p} |")?;
    let (s, p) = both("rss_max_validate_mb");
    writeln!(md, "| RSS, highest while serving the validate rounds (MB) | {s} | {p} |")?;
    writeln!(md, "| ceiling's RSS, highest during its rounds (MB) | {} | |", run.fact("ceiling.rss_max_validate_mb"))?;
    writeln!(md)?;
    Ok(())
}

fn search_table(run: &Run, md: &mut String) -> anyhow::Result<()> {
    let sqlite = run.json("search.sqlite.json");
    let pg = run.json("search.pg.json");
    let Some(first) = sqlite.as_ref().or(pg.as_ref()) else { return Ok(()) };
    writeln!(md, "#### Admin search at N: `GET /api/v1/licenses?…&limit=50`, one request at a time")?;
    writeln!(md)?;
    writeln!(
        md,
        "| query (first example) | SQLite p50 ms | SQLite p95 ms | PostgreSQL p50 ms | PostgreSQL p95 ms | requests |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|")?;
    let kinds = first["kinds"].as_array().cloned().unwrap_or_default();
    let cell = |doc: &Option<Value>, i: usize, field: &str| -> String {
        doc.as_ref().and_then(|d| d["kinds"][i][field].as_f64()).map_or("–".into(), |v| format!("{v:.1}"))
    };
    for (i, kind) in kinds.iter().enumerate() {
        let example = sqlite.as_ref().and_then(|d| d["kinds"][i]["example"].as_str()).unwrap_or("");
        writeln!(
            md,
            "| {} — `{}` | {} | {} | {} | {} | {} |",
            kind["kind"].as_str().unwrap_or("?"),
            example,
            cell(&sqlite, i, "p50_ms"),
            cell(&sqlite, i, "p95_ms"),
            cell(&pg, i, "p50_ms"),
            cell(&pg, i, "p95_ms"),
            kind["requests"]
        )?;
    }
    let all = |doc: &Option<Value>, field: &str| {
        doc.as_ref().and_then(|d| d["all"][field].as_f64()).map_or("–".into(), |v| format!("{v:.1}"))
    };
    writeln!(
        md,
        "| **all of them** | {} | {} | {} | {} | |",
        all(&sqlite, "p50_ms"),
        all(&sqlite, "p95_ms"),
        all(&pg, "p50_ms"),
        all(&pg, "p95_ms")
    )?;
    writeln!(md)?;
    if let Some(p95) = sqlite.as_ref().and_then(|d| d["all"]["p95_ms"].as_f64()) {
        writeln!(
            md,
            "- Target: search at N under 50 ms at p95 (SQLite, all kinds): {p95:.1} ms → {}.",
            verdict(p95 < 50.0)
        )?;
        writeln!(md)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(ratio(1.0, 4.0), "0.25");
        assert_eq!(ratio(1.0, 0.0), "–");
    }
}
