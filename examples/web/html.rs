//! Server-rendered HTML pages, and the small text encodings a web app needs.
//!
//! Every value that a user (or an OAuth provider) controls goes through [`escape`] before it is
//! put into a page: names, emails, error codes, ids, hidden form values.

use std::fmt::Write;

use authdb::{SessionId, SessionInfo, User};
use chrono::{DateTime, Utc};

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a URL query component (everything but RFC 3986's unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes an `application/x-www-form-urlencoded` body into its pairs (`+` is a space).
/// Invalid percent escapes are kept as they are; invalid UTF-8 is replaced.
pub fn form_decode(body: &str) -> Vec<(String, String)> {
    fn hex_val(b: u8) -> Option<u8> {
        char::from(b).to_digit(16).map(|d| d as u8)
    }
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push(h << 4 | l);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// An HTTP date (RFC 9110 IMF-fixdate), as cookies' `Expires` attribute wants it.
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(csrf: &str) -> String {
    hidden("csrf_token", csrf)
}

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        r#"<input type="hidden" name="{}" value="{}">"#,
        escape(name),
        escape(value)
    )
}

/// A form with one button that POSTs to `action` with the CSRF token.
pub fn post_button(action: &str, label: &str, csrf: &str) -> String {
    post_button_with(action, label, csrf, &[])
}

/// A form with one button that POSTs to `action` with the CSRF token and `fields`.
pub fn post_button_with(action: &str, label: &str, csrf: &str, fields: &[(&str, &str)]) -> String {
    let hidden_fields: String = fields.iter().map(|(k, v)| hidden(k, v)).collect();
    format!(
        r#"<form method="post" action="{}" class="inline">{}{}<button type="submit">{}</button></form>"#,
        escape(action),
        csrf_field(csrf),
        hidden_fields,
        escape(label)
    )
}

/// The page frame: title, navigation (which depends on who is signed in) and body.
pub fn layout(title: &str, user: Option<&User>, body: &str) -> String {
    let nav = match user {
        Some(u) => format!(
            r#"<a href="/">Home</a> · <a href="/account">Account</a> · <a href="/signout">Sign out</a> <span class="who">{}</span>"#,
            escape(&display_name(u))
        ),
        None => r#"<a href="/">Home</a> · <a href="/signin">Sign in</a>"#.to_owned(),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · authdb web example</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
nav {{ border-bottom: 1px solid #ccc; padding-bottom: .5rem; margin-bottom: 1rem; }}
.who {{ float: right; color: #555; }}
.error {{ background: #fee; border: 1px solid #c66; padding: .5rem; }}
.notice {{ background: #efe; border: 1px solid #6a6; padding: .5rem; }}
form.inline {{ display: inline; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .25rem .5rem; }}
</style>
</head>
<body>
<nav>{nav}</nav>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The best short label for a user: name, else email, else id.
pub fn display_name(u: &User) -> String {
    u.name
        .clone()
        .or_else(|| u.email.clone())
        .unwrap_or_else(|| u.id.to_string())
}

/// A user-facing explanation of a NextAuth-style error code.
pub fn error_message(code: &str) -> &'static str {
    match code {
        "OAuthAccountNotLinked" => {
            "To confirm your identity, sign in with the same account you used originally. \
             (This provider account is linked to another user, or its email address belongs \
             to a user who has not linked it.)"
        }
        "Verification" => {
            "The sign-in link is no longer valid. It may have been used already or it may \
             have expired."
        }
        "EmailSignin" => "The sign-in email could not be sent. Check the address.",
        "OAuthCallback" | "AccessDenied" => "The sign-in with the provider did not complete.",
        "OAuthState" => {
            "The sign-in could not be verified: it was not started in this browser, or this \
             browser's session changed meanwhile. Please try again."
        }
        _ => "Something went wrong during sign-in.",
    }
}

fn error_box(code: Option<&str>) -> String {
    code.map(|c| {
        format!(
            r#"<p class="error" data-error="{}">{} <small>({})</small></p>"#,
            escape(c),
            escape(error_message(c)),
            escape(c)
        )
    })
    .unwrap_or_default()
}

/// Home: who is signed in, or an invitation to sign in.
pub fn home(user: Option<&User>) -> String {
    let body = match user {
        Some(u) => format!(
            r#"<p id="status" data-signed-in="true">Signed in as <strong>{}</strong>{}.</p>
<p><a href="/account">Your account</a></p>"#,
            escape(&display_name(u)),
            u.email
                .as_deref()
                .map(|e| format!(" &lt;{}&gt;", escape(e)))
                .unwrap_or_default()
        ),
        None => r#"<p id="status" data-signed-in="false">You are not signed in.</p>
<p><a href="/signin">Sign in</a></p>"#
            .to_owned(),
    };
    layout("Home", user, &body)
}

/// The sign-in page: email (magic link) and the mock OAuth provider.
pub fn signin(user: Option<&User>, csrf: &str, error: Option<&str>) -> String {
    let already = user
        .map(|u| {
            format!(
                r#"<p class="notice">You are signed in as {}. Signing in again replaces this browser's session.</p>"#,
                escape(&display_name(u))
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"{err}{already}
<h2>Email</h2>
<form method="post" action="/signin/email">
{csrf}
<label>Email address <input type="email" name="email" required maxlength="320" autocomplete="email"></label>
<button type="submit">Send me a sign-in link</button>
</form>
<p><small>No mail server needed: the link is printed on the server's console and appended to the
outbox file.</small></p>
<h2>OAuth</h2>
{mock}"#,
        err = error_box(error),
        csrf = csrf_field(csrf),
        mock = post_button_with(
            "/signin/mock",
            "Sign in with Mock OAuth",
            csrf,
            &[("flow", "signin")]
        ),
    );
    layout("Sign in", user, &body)
}

/// After the sign-in form: where to find the link.
pub fn verify_request(user: Option<&User>) -> String {
    layout(
        "Check your email",
        user,
        "<p>A sign-in link has been sent. In this example the \"email\" is printed on the \
         server's console and appended to the outbox file. Open the link in this browser: \
         opened in another one, it asks you to confirm that you requested it.</p>",
    )
}

/// What the sign-in link page knows about the link.
pub struct LinkPage<'a> {
    /// The address the link signs in as.
    pub email: &'a str,
    /// The link's token.
    pub token: &'a str,
    /// The link's browser binding (empty for a link without one).
    pub bind: &'a str,
    /// Whether this browser is the one that asked for the link.
    pub bound: bool,
}

/// The page a sign-in link opens: nothing happens until the button is pressed (a POST), so a
/// mail scanner that fetches the link does not use it up. Opened in a browser other than the
/// one that asked for the link, it says so plainly and asks for an explicit confirmation.
pub fn confirm_link(user: Option<&User>, csrf: &str, link: &LinkPage<'_>) -> String {
    let replaces = user
        .filter(|u| u.email.as_deref() != Some(link.email))
        .map(|u| {
            format!(
                r#"<p class="notice">You are signed in as {}. Continuing signs this browser out of that account.</p>"#,
                escape(&display_name(u))
            )
        })
        .unwrap_or_default();
    let email = escape(link.email);
    let fields = [
        ("email", link.email),
        ("token", link.token),
        ("bind", link.bind),
    ];
    let body = if link.bound {
        format!(
            r#"<p id="link" data-bound="true">Sign in as <strong>{email}</strong>?</p>
{replaces}<p>{}</p>"#,
            post_button_with(
                "/callback/email",
                &format!("Sign in as {}", link.email),
                csrf,
                &fields
            )
        )
    } else {
        let mut with_confirm = fields.to_vec();
        with_confirm.push(("other_browser", "yes"));
        format!(
            r#"<div class="error" id="link" data-bound="false" data-warning="other-browser">
<p><strong>This sign-in link was requested from another browser.</strong></p>
<p>It signs this browser in to the account <strong>{email}</strong>. If you did not ask for a
sign-in link for that address yourself, someone may be trying to sign you in to their account
(to see what you do there): close this page.</p>
</div>
{replaces}<p>{}</p>"#,
            post_button_with(
                "/callback/email",
                &format!("I asked for this link: sign in as {}", link.email),
                csrf,
                &with_confirm
            )
        )
    };
    layout("Sign in with a link", user, &body)
}

/// One linked provider account, for the account page.
pub struct LinkedAccount {
    /// The provider id.
    pub provider: String,
    /// The user's id at the provider.
    pub account_id: String,
    /// The label the provider shows for it.
    pub label: String,
}

/// The account page: profile, linked providers, active sessions.
pub fn account(
    user: &User,
    linked: &[LinkedAccount],
    sessions: &[SessionInfo],
    current: SessionId,
    csrf: &str,
    error: Option<&str>,
) -> String {
    let mut body = error_box(error);
    let verified = user
        .email_verified
        .map(|t| format!(" (verified {})", when(t)))
        .unwrap_or_default();
    let _ = write!(
        body,
        r#"<h2>Profile</h2>
<table>
<tr><th>Name</th><td id="name">{}</td></tr>
<tr><th>Email</th><td id="email">{}{}</td></tr>
<tr><th>User id</th><td>{}</td></tr>
<tr><th>Member since</th><td>{}</td></tr>
</table>
<h2>Linked providers</h2>
"#,
        escape(user.name.as_deref().unwrap_or("—")),
        escape(user.email.as_deref().unwrap_or("—")),
        escape(&verified),
        escape(&user.id.to_string()),
        when(user.created_at),
    );
    if linked.is_empty() {
        body.push_str("<p>No provider linked.</p>\n");
    } else {
        body.push_str("<ul id=\"linked\">\n");
        for a in linked {
            let _ = writeln!(
                body,
                r#"<li data-provider="{}" data-account="{}">{} — {}</li>"#,
                escape(&a.provider),
                escape(&a.account_id),
                escape(&a.provider),
                escape(&a.label)
            );
        }
        body.push_str("</ul>\n");
    }
    body.push_str(&post_button_with(
        "/signin/mock",
        "Link a Mock OAuth account",
        csrf,
        &[("flow", "link")],
    ));
    let _ = write!(
        body,
        "\n<h2>Active sessions</h2>\n<table id=\"sessions\">\n\
         <tr><th>Started</th><th>Last refreshed</th><th>Expires</th><th></th></tr>\n"
    );
    for s in sessions {
        let this = if s.id == current {
            " <strong>(this browser)</strong>"
        } else {
            ""
        };
        let _ = writeln!(
            body,
            r#"<tr data-session="{id}"><td>{}</td><td>{}</td><td>{}</td><td>{}{this}</td></tr>"#,
            when(s.created_at),
            when(s.updated_at),
            when(s.expires),
            post_button(
                &format!("/account/sessions/{}/signout", s.id),
                "Sign out",
                csrf
            ),
            id = escape(&s.id.to_string()),
        );
    }
    body.push_str("</table>\n<p>");
    body.push_str(&post_button(
        "/account/signout-everywhere",
        "Sign out everywhere",
        csrf,
    ));
    body.push_str("</p>\n");
    layout("Account", Some(user), &body)
}

/// The sign-out confirmation page (sign-out is a POST, so it carries the CSRF token).
pub fn signout(user: &User, csrf: &str) -> String {
    let body = format!(
        "<p>Sign out of this browser?</p>\n{}",
        post_button("/signout", "Sign out", csrf)
    );
    layout("Sign out", Some(user), &body)
}

/// An error page with a status-specific message.
pub fn error_page(title: &str, message: &str) -> String {
    layout(
        title,
        None,
        &format!(r#"<p class="error">{}</p>"#, escape(message)),
    )
}
