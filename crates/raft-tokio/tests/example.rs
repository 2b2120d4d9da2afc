//! The counter example runs as a test, so the program a reader copies keeps working: it
//! asserts that every node ends holding the same sum.

#[path = "../examples/counter.rs"]
mod counter;

#[test]
fn the_counter_example_runs_to_agreement() {
    counter::main().expect("the example runs");
}
