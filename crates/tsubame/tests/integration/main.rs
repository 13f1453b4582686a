//! Integration tests: the real `tsubame` binary against real clients (Python smtplib, swaks)
//! and real faults (SIGKILL, fsync EIO via strace, ENOSPC on a tmpfs).

mod harness;

mod ab_tests;
mod admin;
mod alerts;
mod api;
mod api_content;
mod campaign_crash;
mod campaign_providers;
mod campaigns;
mod clients;
mod cluster;
mod cluster_drill;
mod cluster_upgrade;
mod compat_audience;
mod compat_campaigns;
mod config_cli;
mod console;
mod contacts;
mod crash;
mod events;
mod faults;
mod forecast;
mod http_limits;
mod imports;
mod inbound;
mod limits;
mod manage;
mod openapi;
mod ops;
mod optin;
mod preferences;
mod proxy_protocol;
mod relay;
mod relay_crash;
mod shutdown;
mod sink;
mod smtp_tenants;
mod smuggling;
mod tenants;
mod tracking;
