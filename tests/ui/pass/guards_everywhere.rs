// Every supported form of the guards compiles without warnings, and a
// guarded unit fn can be called as a statement.
#![deny(warnings)]

use std::sync::Arc;

use parallelizer::{AsParallelizer, Parallelizer, Restricted, main_restricted, worker_restricted};

/// Docs and attributes are kept.
#[main_restricted]
#[inline]
pub fn free(par: &dyn Parallelizer) {
    let _ = par;
}

#[worker_restricted]
fn by_arc(par: Arc<dyn Parallelizer>, x: u8) -> u8 {
    let _ = par;
    x
}

#[main_restricted]
fn by_ref_arc(par: &Arc<dyn Parallelizer>) -> usize {
    par.nprocs()
}

#[main_restricted]
fn by_impl(par: &impl Parallelizer) -> usize {
    par.id()
}

#[worker_restricted]
fn by_generic<P: AsParallelizer + ?Sized>(par: &P) -> bool {
    par.as_parallelizer().on_main()
}

#[main_restricted]
fn question_mark(text: &str) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    Ok(text.parse::<u32>()? + 1)
}

struct Thing {
    par: Arc<dyn Parallelizer>,
    n: u32,
}

impl Thing {
    #[main_restricted(par = self.par)]
    fn get(&self) -> u32 {
        self.n
    }

    #[main_restricted(par = &self.par)]
    fn bump(&mut self) {
        self.n += 1;
    }

    #[worker_restricted(par = self.par.clone())]
    fn take(self) -> u32 {
        self.n
    }

    #[main_restricted]
    fn assoc(#[par] p: &Arc<dyn Parallelizer>) -> Self {
        Thing {
            par: p.clone(),
            n: 0,
        }
    }
}

fn main() {
    let par = parallelizer::get_default();
    free(&*par);
    let _: Restricted<u8> = by_arc(par.clone(), 1);
    assert_eq!(by_ref_arc(&par), Restricted::Ran(1));
    let serial = parallelizer::backend::Serial::new(parallelizer::Config::new("serial"));
    assert_eq!(by_impl(&serial), Restricted::Ran(0));
    assert_eq!(by_generic(&*par), Restricted::InMainProcess);
    assert_eq!(question_mark("41"), Restricted::Ran(Ok(42)));
    let mut t = Thing::assoc(&par).unwrap();
    t.bump();
    assert_eq!(t.get(), Restricted::Ran(1));
    assert_eq!(t.take(), Restricted::InMainProcess);
}
