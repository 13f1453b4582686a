//! Message templates. So far: [`handlebars`], the subset of Handlebars that SendGrid's
//! dynamic templates use, rendered against the message's JSON data.

pub mod handlebars;
