//! Helper programs for the end-to-end tests in `tests/tests/`: each is a
//! separate OS process, as a real deployment would have.
