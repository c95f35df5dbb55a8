//! Prints the settings `OrderHistory` picks for the `EPHEMOS_PROFILE` it runs with, or the
//! error: the profile tests run it with different values.

fn main() {
    match ephemos_clients_tests::OrderHistory::BAKED.from_env() {
        Ok(config) => println!(
            "{} {} {:?}",
            config.endpoints[0], config.preset, config.connection.connect_timeout
        ),
        Err(error) => {
            println!("error: {error}");
            std::process::exit(2);
        }
    }
}
