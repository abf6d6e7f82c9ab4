//! Developer tools that no running node links: the end-to-end benchmarks behind
//! `wlnode bench` ([`bench`], [`screen_bench`]), the synthetic watchlist they use, the
//! federation generator behind `wlnode demo`, the deploy scripts and the tests
//! ([`scaffold`]), and the fuzz target bodies ([`fuzz`]).
//!
//! The layering test checks that no runtime crate depends on this one.

pub mod bench;
pub mod fuzz;
pub mod scaffold;
pub mod screen_bench;
