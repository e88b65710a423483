//! One agent run of a session and what bounds and watches it: the iteration itself ([`iterate`]) and chat
//! ([`chat`]), the budget meter ([`budget`]), permission policies and approvals ([`permissions`]), the
//! watcher that answers approvals and stop requests ([`control`]), Ctrl-C ([`interrupt`]), the follower of
//! stored events ([`feed`]), test scripts ([`script`]), and secrets found in what the agent committed
//! ([`leaks`]).

pub mod budget;
pub mod chat;
pub mod control;
pub mod feed;
pub mod interrupt;
pub mod iterate;
pub mod leaks;
pub mod permissions;
pub mod script;
