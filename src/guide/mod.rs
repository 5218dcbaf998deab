//! The guide: the long pages that used to be the README, one doc-only module each, so
//! that their code blocks run as doc tests.

#[doc = include_str!("password.md")]
pub mod password {}

#[doc = include_str!("breach_day.md")]
pub mod breach_day {}

#[doc = include_str!("cards.md")]
pub mod cards {}

#[doc = include_str!("minimize.md")]
pub mod minimize {}

#[doc = include_str!("stores.md")]
pub mod stores {}

#[doc = include_str!("drill.md")]
pub mod drill {}

#[doc = include_str!("shop_server.md")]
pub mod shop_server {}
