//! What the command line says after a core error: the exit code its kind
//! gets, and a next step in this command line's words where there is an
//! obvious one.

use labmate::{Error, Kind};

/// 2 for what the user can put right by asking differently, 1 for the
/// machine's faults and labmate's own.
pub fn exit_code(kind: Kind) -> u8 {
    if kind.is_user() { 2 } else { 1 }
}

/// A next step for the user, where there is an obvious one.
pub fn hint(e: &Error) -> Option<&'static str> {
    match e {
        Error::NoLab { .. } => Some("run `labmate init` here, or set LABMATE_DIR to a lab's .labmate folder"),
        Error::UnknownRun { .. } => Some(
            "a run is named by its id, a unique id prefix, its last 4 characters, or its name; `labmate runs` lists them",
        ),
        Error::AmbiguousRun { .. } => Some("give the full id or a longer prefix: a full id always names its own run"),
        Error::BadConfig { .. } => Some("write config values as KEY=VALUE, e.g. --config lr=3e-4"),
        Error::CommandNotFound { .. } => Some("give the program's path, or check PATH"),
        Error::NotExecutable { directory: true, .. } => Some("name the program inside it"),
        Error::NotExecutable { .. } => {
            Some("make it executable (chmod +x FILE), or run it through its interpreter (python3 FILE)")
        }
        Error::NotFound { what: "notebook entry", .. } => Some("`labmate notebook show` lists the entries"),
        Error::NotFound { what: "approval request or review item", .. } => Some("`labmate review` lists the open ones"),
        Error::Invalid { what: "reason", .. } => Some("say why with --reason TEXT"),
        Error::Invalid { what: "reproducer", .. } => Some("give the reproducer with --repro \"CMD ...\""),
        Error::Invalid { what: "image", .. } => {
            Some("draw the plot inside the repository, e.g. `labmate plot ... -o notebook/NAME.svg`")
        }
        Error::Invalid { what: "name template", .. } => {
            Some("a name template fills {config.KEY} from --config KEY=VALUE and {tags} from --tag TAG")
        }
        Error::Within { source, .. } => hint(source),
        Error::LabNotWritable { .. } => Some(LAB_HINT),
        Error::Index(_) if e.kind() == Kind::Environment => Some(LAB_HINT),
        Error::Index(_) => Some("the index is derived data: `labmate reindex` rebuilds it from the run folders"),
        _ => None,
    }
}

const LAB_HINT: &str = "labmate writes into the lab folder: check its owner, permissions and free space";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_kinds_exit_2_and_the_rest_1() {
        for (kind, code) in [
            (Kind::NotFound, 2),
            (Kind::Invalid, 2),
            (Kind::Conflict, 2),
            (Kind::Forbidden, 2),
            (Kind::Environment, 1),
            (Kind::Internal, 1),
        ] {
            assert_eq!(exit_code(kind), code, "{kind:?}");
        }
    }

    #[test]
    fn an_error_within_a_larger_input_keeps_its_hint() {
        let e = Error::UnknownRun { query: "x".into(), candidates: vec![] };
        let hint = super::hint(&e);
        assert!(hint.is_some_and(|h| h.contains("`labmate runs` lists them")), "{hint:?}");
        assert_eq!(super::hint(&e.within("{{x.metrics.loss}}")), hint);
        assert_eq!(super::hint(&Error::invalid("timeout", "--timeout: bad duration 'x'")), None);
    }
}
