// An unknown scope name must not compile.
fn main() {
    let _ = medium_oauth::scopes![basicProfile, readMinds];
}
