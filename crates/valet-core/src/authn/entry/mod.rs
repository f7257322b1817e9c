//! The entry points the HTTP layer calls, one file per page or form that
//! drives the sign-in: each opens a new request or the interaction its form
//! names, runs the step its stage waits for, and hands over to a
//! [`super::step::Step`], which asks the policy where to go next.

pub(super) mod account;
pub(super) mod authorize;
pub(super) mod consent;
pub(super) mod device;
pub(super) mod login;
pub(super) mod second_factor;
pub(super) mod upstream;
pub(super) mod upstream_account;
