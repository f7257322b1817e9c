pub mod audit;
pub mod client;
pub mod guard;
pub mod init;
pub mod key;
pub mod serve;
pub mod token;
pub mod user;
