//! Tests of `msg`: the codec, plain data, and type checks on receipt.

use super::*;

#[test]
fn serde_roundtrip_through_bytes() {
    let m = Msg::new((1u32, String::from("x"), vec![1.5f64]));
    let wire = Msg::from_bytes(Encoding::Serde, m.into_bytes().unwrap());
    let v: (u32, String, Vec<f64>) = wire.into_value().unwrap();
    assert_eq!(v, (1, "x".into(), vec![1.5]));
}

#[test]
fn type_mismatch_is_a_codec_error() {
    let err = Msg::new(1u32).into_value::<String>().unwrap_err();
    assert!(
        matches!(err, Error::Codec(ref s) if s.contains("u32")),
        "{err}"
    );
    let wire = Msg::from_bytes(Encoding::Serde, Msg::new(7u64).into_bytes().unwrap());
    assert!(matches!(
        wire.into_value::<(u64, u64)>(),
        Err(Error::Codec(_))
    ));
}

#[test]
fn plain_vectors_are_raw_bytes_for_either_typed_call() {
    let m = Msg::new(vec![1.5f64, -2.0]);
    assert_eq!(m.encoding(), Encoding::Pod);
    assert_eq!(m.pod_bytes().unwrap().len(), 16);
    let wire =
        Msg::from_bytes(Encoding::Pod, m.to_bytes().unwrap()).sent_as(m.type_name().unwrap());
    assert_eq!(wire.into_value::<Vec<f64>>().unwrap(), [1.5, -2.0]);
    let pod = Msg::from_bytes(Encoding::Pod, Msg::pod(vec![7u32]).to_bytes().unwrap());
    assert_eq!(pod.into_value::<Vec<u32>>().unwrap(), [7]);
    assert_eq!(Msg::new(vec![3i16]).into_pod::<i16>().unwrap(), [3]);
    let wrong = Msg::from_bytes(Encoding::Pod, vec![0; 8]).sent_as("alloc::vec::Vec<f64>");
    assert!(matches!(
        wrong.into_value::<Vec<u64>>(),
        Err(Error::Codec(_))
    ));
}

#[test]
fn pod_rejects_ragged_bytes() {
    let m = Msg::from_bytes(Encoding::Pod, vec![0; 7]);
    assert!(matches!(m.into_pod::<f64>(), Err(Error::Codec(_))));
}

#[test]
fn duplicate_serializes_only_when_needed() {
    let m = Msg::new(vec![String::from("a")]);
    let d = m.duplicate().unwrap();
    assert!(!d.is_value());
    assert_eq!(d.into_value::<Vec<String>>().unwrap(), ["a"]);
    // Vectors of plain data are copied, not serialized.
    let p = Msg::new(vec![1u8, 2]);
    assert!(p.duplicate().unwrap().is_value());
    let c = Msg::cloneable(5i32);
    assert!(c.duplicate().unwrap().is_value());
}

#[test]
fn a_local_value_of_a_type_comes_out_and_anything_else_comes_back() {
    struct Note(u32);
    let note = Msg::local(Note(7)).into_local_of::<Note>();
    assert!(matches!(note, Ok(Note(7))));
    let other = Msg::local(Note(7)).into_local_of::<u32>().unwrap_err();
    assert!(other.into_local_of::<Note>().is_ok(), "given back whole");
    let bytes = Msg::from_bytes(Encoding::Serde, vec![7]).sent_as(std::any::type_name::<u8>());
    assert!(
        bytes.into_local_of::<u8>().is_err(),
        "bytes are not a local value"
    );
}
