//! Two structs registered under one mode name: an error at first use that
//! names both types, never a silent pick. Here and not in `tests/it`:
//! `lookup` falls back to the process-global default, which a concurrent
//! test's `enter` changes; this test holds the registry tests' lock.

use parallelizer::Error;

mod first {
    one_rank_backend! {
        #[parallelizer::parallelizer(name = "twice")]
        pub struct Alpha;
    }
}

mod second {
    one_rank_backend! {
        #[parallelizer::parallelizer(name = "twice")]
        pub struct Beta;
    }
}

#[test]
fn duplicate_name_is_an_error_naming_both() {
    let _lock = super::serialized();
    let err = parallelizer::from_config("twice").unwrap_err();
    let Error::Config(message) = &err else {
        panic!("expected a config error, got {err}");
    };
    assert!(
        message.contains("duplicate_backend::first::Alpha"),
        "{message}"
    );
    assert!(
        message.contains("duplicate_backend::second::Beta"),
        "{message}"
    );
    assert!(message.contains("`twice`"), "{message}");
    // The other modes are unaffected, and the name is listed once.
    assert_eq!(
        parallelizer::from_config("serial").unwrap().mode(),
        "serial"
    );
    let modes = parallelizer::modes();
    assert_eq!(modes.iter().filter(|m| *m == "twice").count(), 1);
    // lookup falls back to the default instead of picking one.
    assert_eq!(parallelizer::lookup("twice").mode(), "serial");
}
