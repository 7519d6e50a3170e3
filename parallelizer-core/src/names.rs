//! The names users type for modes: McUtils' names as aliases, any case, and
//! a "did you mean" for a typo. Pure functions over strings: the registry
//! resolves names with them, errors suggest with them.

/// Names of McUtils' `Parallelizer.Backends` / `mode_map` that are not a
/// mode's own name here, and the mode each means.
pub(crate) const ALIASES: &[(&str, &str)] = &[("multiprocessing", "processes")];

/// The mode `name` means among `modes` (the registered mode names): the
/// mode spelled exactly so, else the one spelled so in another case
/// (`MPI`, `Serial`), else the mode a McUtils alias names
/// (`multiprocessing`, in any case). `None` if none does.
pub(crate) fn resolve<'m>(name: &str, modes: &[&'m str]) -> Option<&'m str> {
    if let Some(exact) = modes.iter().find(|m| **m == name) {
        return Some(exact);
    }
    let mut folded = modes.iter().filter(|m| m.eq_ignore_ascii_case(name));
    if let (Some(one), None) = (folded.next(), folded.next()) {
        return Some(one);
    }
    let (_, target) = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))?;
    modes.iter().find(|m| *m == target).copied()
}

/// The canonical spelling of `name` if it is an alias or a built-in mode in
/// another case, whether or not this build has that mode (so that
/// `from_config("MPI")` without the feature still says which feature
/// enables it).
pub(crate) fn canonical(name: &str, builtin: &[&'static str]) -> Option<&'static str> {
    let mut all: Vec<&'static str> = builtin
        .iter()
        .copied()
        .chain(ALIASES.iter().map(|(_, mode)| *mode))
        .collect();
    all.sort_unstable();
    all.dedup();
    resolve(name, &all)
}

/// `" (did you mean `x`?)"` when `name` is a likely typo of one of the
/// modes `known` or of an alias, else `""`.
pub(crate) fn did_you_mean_mode(name: &str, known: &[String]) -> String {
    let aliases = ALIASES.iter().map(|(alias, _)| *alias);
    did_you_mean(name, known.iter().map(String::as_str).chain(aliases))
}

/// `" (did you mean `x`?)"` when `name` is a likely typo of one of
/// `candidates`, else `""`. A candidate is likely when it is within about a
/// third of its length in edits (insertions, deletions, substitutions and
/// swaps of neighbours, ignoring case), and nearest.
pub(crate) fn did_you_mean<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    let name = name.to_ascii_lowercase();
    let best = candidates
        .into_iter()
        .filter(|c| !c.eq_ignore_ascii_case(&name))
        .map(|c| (distance(&name, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// The optimal-string-alignment distance between `a` and `b`: the fewest
/// insertions, deletions, substitutions and swaps of two neighbouring
/// characters that turn one into the other.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [&str; 4] = ["mpi", "processes", "serial", "threads"];

    #[test]
    fn mcutils_names_and_any_case_resolve() {
        for (typed, mode) in [
            ("serial", "serial"),
            ("Serial", "serial"),
            ("MPI", "mpi"),
            ("multiprocessing", "processes"),
            ("Multiprocessing", "processes"),
            ("THREADS", "threads"),
        ] {
            assert_eq!(resolve(typed, &MODES), Some(mode), "{typed}");
        }
        assert_eq!(resolve("warp", &MODES), None);
        // An alias whose mode this build lacks resolves to nothing...
        assert_eq!(resolve("multiprocessing", &["serial"]), None);
        // ...but its canonical name is still known, for the error.
        assert_eq!(canonical("MultiProcessing", &MODES), Some("processes"));
        assert_eq!(canonical("MPI", &MODES), Some("mpi"));
        assert_eq!(
            canonical("Processes", &["processes", "mpi"]),
            Some("processes")
        );
    }

    #[test]
    fn an_exact_name_wins_over_one_in_another_case() {
        assert_eq!(resolve("Fast", &["fast", "Fast"]), Some("Fast"));
        // Two names that differ only in case: no guess.
        assert_eq!(resolve("FAST", &["fast", "Fast"]), None);
    }

    #[test]
    fn typos_get_the_nearest_name() {
        let known: Vec<String> = MODES.iter().map(|s| s.to_string()).collect();
        for (typo, meant) in [
            ("thread", "threads"),
            ("threds", "threads"),
            ("proceses", "processes"),
            ("mip", "mpi"),
            ("serail", "serial"),
            ("multiprocesing", "multiprocessing"),
            ("Thread", "threads"),
        ] {
            assert_eq!(
                did_you_mean_mode(typo, &known),
                format!(" (did you mean `{meant}`?)"),
                "{typo}"
            );
        }
        assert_eq!(did_you_mean_mode("warp", &known), "");
        assert_eq!(did_you_mean_mode("gpu", &known), "");
        assert_eq!(distance("abc", "acb"), 1);
        assert_eq!(distance("", "abc"), 3);
    }
}
