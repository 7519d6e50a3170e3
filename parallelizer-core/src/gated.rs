//! Built-in modes a build can leave out (`processes` off Linux, `mpi`
//! without its feature): asking for one is an error that says why, not a
//! bare "unknown parallelizer".

use crate::error::Error;

/// The built-in modes that some builds leave out: the mode, whether this
/// build has it, and why a build may not (completing "mode `NAME` ...").
/// Consulted only when no backend is registered under the name, so a user
/// backend named `processes` on macOS is found as usual.
const GATED_MODES: &[(&str, bool, &str)] = &[
    (
        "processes",
        cfg!(target_os = "linux"),
        "is Linux-only: its workers are re-executed copies of the program, joined over \
         Unix socketpairs with memfd_create, PR_SET_PDEATHSIG and /proc; use `threads` \
         for every core of one machine",
    ),
    (
        "mpi",
        cfg!(feature = "mpi"),
        "needs the cargo feature `mpi` of `parallelizer` (an MPI library and libclang \
         at build time)",
    ),
];

/// The built-in mode `name` means in another case or as a McUtils alias
/// (`MPI`, `Multiprocessing`), whether or not this build has it.
pub(crate) fn canonical(name: &str) -> Option<&'static str> {
    let builtin: Vec<&'static str> = GATED_MODES.iter().map(|(m, _, _)| *m).collect();
    crate::names::canonical(name, &builtin)
}

/// The error for `mode` if it is a built-in mode this build leaves out
/// (`Error::Config`, saying why), else `None`.
pub(crate) fn left_out(mode: &str, known: &[String]) -> Option<Error> {
    left_out_of(GATED_MODES, mode, std::env::consts::OS, known)
}

fn left_out_of(
    table: &[(&str, bool, &str)],
    mode: &str,
    os: &str,
    known: &[String],
) -> Option<Error> {
    let (_, _, why) = table.iter().find(|(m, built, _)| *m == mode && !built)?;
    Some(Error::Config(format!(
        "mode `{mode}` {why}; this build (for {os}) has: {}",
        known.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["serial".into(), "threads".into()]
    }

    /// The message a macOS or Windows build gives for `processes`, made
    /// from the real table entry with "built" turned off.
    #[test]
    fn processes_elsewhere_says_linux_only() {
        let entry = *GATED_MODES.iter().find(|e| e.0 == "processes").unwrap();
        assert_eq!(entry.1, cfg!(target_os = "linux"));
        for os in ["macos", "windows"] {
            let err = left_out_of(&[(entry.0, false, entry.2)], "processes", os, &known())
                .expect("left out");
            let msg = err.to_string();
            assert!(matches!(err, Error::Config(_)), "{err:?}");
            assert!(msg.contains("mode `processes` is Linux-only"), "{msg}");
            assert!(
                msg.contains(&format!("this build (for {os}) has: serial, threads")),
                "{msg}"
            );
        }
    }

    #[test]
    fn built_and_unlisted_modes_are_not_left_out() {
        assert!(
            left_out_of(
                &[("processes", true, "is Linux-only")],
                "processes",
                "linux",
                &known()
            )
            .is_none()
        );
        assert!(left_out_of(GATED_MODES, "warp", "linux", &known()).is_none());
        assert!(left_out("threads", &known()).is_none());
        #[cfg(target_os = "linux")]
        assert!(left_out("processes", &known()).is_none());
    }

    /// This build's answer for `mpi`: built with the feature, or an error
    /// naming the feature (not a bare "unknown parallelizer"), which is what
    /// `from_config` returns.
    #[test]
    fn mpi_without_the_feature_names_it() {
        let got = left_out("mpi", &known());
        if cfg!(feature = "mpi") {
            assert!(got.is_none());
        } else {
            let msg = got.expect("left out").to_string();
            assert!(
                msg.contains("mode `mpi` needs the cargo feature `mpi`"),
                "{msg}"
            );
            // from_config gives that error, not "unknown parallelizer".
            let err = crate::from_config("mpi:2").map(|_| ()).unwrap_err();
            let all = crate::modes().join(", ");
            assert_eq!(err.to_string(), msg.replace("serial, threads", &all));
        }
    }
}
