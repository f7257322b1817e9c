//! The client side of the Token Status List (draft-ietf-oauth-status-list, JWT form):
//! lists cached per `uri` ([`cache`]), decoded and checked ([`list`]), kept fresh by `ttl`
//! polling and Valet's Server-Sent Events feed ([`events`]).

pub(crate) mod cache;
pub(crate) mod events;
pub(crate) mod list;

pub(crate) use cache::StatusCache;
