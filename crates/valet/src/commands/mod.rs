pub mod client;
pub mod key;
pub mod serve;
pub mod token;
pub mod user;
