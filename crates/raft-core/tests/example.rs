//! The crate's example runs as a test, so the loop it shows keeps working: its own
//! assertions check that all four nodes end with the same, expected counter.

#[path = "../examples/three_nodes.rs"]
mod three_nodes;

#[test]
fn the_three_node_example_runs_to_agreement() {
    three_nodes::main();
}
