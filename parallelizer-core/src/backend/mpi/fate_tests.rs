//! Tests of `fate.rs`: the region running on this rank as each thread finds it.

use super::*;
use crate::backend::mpi::world::world;

/// Whether `got` is `want` (the same region, not an equal one).
fn is(got: Option<Arc<Current>>, want: &Arc<Current>) -> bool {
    got.is_some_and(|got| Arc::ptr_eq(&got, want))
}

#[test]
fn each_thread_sees_the_region_running_now_not_the_one_it_saw_last() {
    let world = world().expect("MPI singleton");
    let first = Arc::new(Current::new(world, None, world.comms()));
    let second = Arc::new(Current::new(world, None, world.comms()));
    // A thread that asked during the first region (its copy taken
    // then) asks again during the second, and after it.
    let (ask, asked) = std::sync::mpsc::channel::<()>();
    let (tell, told) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        for () in asked {
            tell.send(current()).unwrap();
        }
    });
    let mut seen = Vec::new();
    for region in [Some(&first), Some(&second), None] {
        set_current(region.cloned());
        ask.send(()).unwrap();
        seen.push((current(), told.recv().unwrap()));
    }
    drop(ask);
    other.join().unwrap();
    assert!(is(seen[0].0.clone(), &first) && is(seen[0].1.clone(), &first));
    assert!(is(seen[1].0.clone(), &second) && is(seen[1].1.clone(), &second));
    assert!(seen[2].0.is_none() && seen[2].1.is_none());
}
