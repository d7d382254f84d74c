//! The example's HTML pages. Every value a person or a provider controls goes through
//! `html::escape` (shared with `examples/web`).
//!
//! Markers for the tests: `<body data-signed-in="true|false">`, and an error's code in
//! `data-error="…"`.

use authdb_axum_login::User;

use crate::html::escape;

/// Errors the pages explain, by code (NextAuth's codes where it has one).
fn error_message(code: &str) -> &'static str {
    match code {
        "CredentialsSignin" => "Wrong email or password.",
        "EmailTaken" => "An account with this email already exists: sign in instead.",
        "InvalidInput" => "Please check the form: a field is empty or too long.",
        "OAuthAccountNotLinked" => {
            "This email already belongs to an account. Sign in the way you did before; \
             then link the provider from your account."
        }
        "OAuthState" => "The sign-in could not be verified (it expired or was not started here).",
        "OAuthCallback" => "The provider's answer could not be used. Try again.",
        "AccessDenied" => "The provider did not let you sign in.",
        "Origin" => "This request did not come from this site's pages.",
        _ => "Something went wrong.",
    }
}

/// A whole page.
pub fn page(title: &str, user: Option<&User>, error: Option<&str>, body: &str) -> String {
    let who = match user {
        Some(u) => format!(
            r#"Signed in as <strong>{}</strong> · <a href="/protected">Account</a> · {}"#,
            escape(&display_name(u)),
            post_button("/logout", "Sign out"),
        ),
        None => r#"<a href="/login">Sign in</a> · <a href="/signup">Sign up</a>"#.to_owned(),
    };
    let error = error.map_or_else(String::new, |code| {
        format!(
            r#"<p class="error" data-error="{}">{}</p>"#,
            escape(code),
            error_message(code)
        )
    });
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body data-signed-in="{signed_in}">
<nav><a href="/">Home</a> · {who}</nav>
<h1>{title}</h1>
{error}{body}
</body></html>"#,
        title = escape(title),
        signed_in = user.is_some(),
    )
}

/// The name to show for a user: name, else email, else id.
pub fn display_name(u: &User) -> String {
    let p = u.profile();
    p.name
        .clone()
        .or_else(|| p.email.clone())
        .unwrap_or_else(|| p.id.to_string())
}

/// A form with one button, posting to `action`.
pub fn post_button(action: &str, label: &str) -> String {
    format!(
        r#"<form method="post" action="{}" style="display:inline"><button>{}</button></form>"#,
        escape(action),
        escape(label)
    )
}

/// The sign-in page: the password form and the OAuth buttons.
pub fn login(next: Option<&str>) -> String {
    let next = next.map_or_else(String::new, |n| {
        format!(r#"<input type="hidden" name="next" value="{}">"#, escape(n))
    });
    format!(
        r#"<form method="post" action="/login">{next}
<p><label>Email <input name="email" type="email" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button>Sign in</button></p>
</form>
<p>Or <a href="/auth/mock">sign in with Mock OAuth</a>.</p>"#
    )
}

/// The sign-up page.
pub fn signup() -> String {
    r#"<form method="post" action="/signup">
<p><label>Name <input name="name"></label></p>
<p><label>Email <input name="email" type="email" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="new-password" required></label></p>
<p><button>Sign up</button></p>
</form>"#
        .to_owned()
}

/// The account page: who, on how many devices, the password form, sign out everywhere.
pub fn account(user: &User, devices: usize) -> String {
    let p = user.profile();
    format!(
        r#"<p>Email: <span data-email="{email}">{email}</span></p>
<p>Signed in on <span data-devices="{devices}">{devices}</span> device(s).</p>
<h2>Change password</h2>
<form method="post" action="/password">
<p><label>Current password <input name="current_password" type="password" autocomplete="current-password" required></label></p>
<p><label>New password <input name="new_password" type="password" autocomplete="new-password" required></label></p>
<p><button>Change password</button> (signs out every other device)</p>
</form>
<h2>Devices</h2>
<p>{everywhere}</p>"#,
        email = escape(p.email.as_deref().unwrap_or("(none)")),
        everywhere = post_button("/signout-everywhere", "Sign out everywhere"),
    )
}
