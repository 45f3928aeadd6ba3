//! SMAC's environment table: defaults, every variable, and the refusals.

use super::*;

fn load(pairs: &[(&str, &str)]) -> Result<SmacConfig, Error> {
    SmacConfig::from_env(pairs.iter().copied())
}

const PRIMARY: [(&str, &str); 3] = [
    (
        "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION",
        "eu-west-1",
    ),
    (
        "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__USERPOOL_ID",
        "eu-west-1_Primary1",
    ),
    (
        "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__APP_CLIENT_ID",
        "primary-client",
    ),
];

#[test]
fn nothing_set_gives_every_default() {
    let c = load(&[("PATH", "/bin"), ("AWS_REGION", "eu-west-1")]).unwrap();
    assert_eq!(c.user_id, "email");
    assert_eq!(c.provider, Provider::None);
    assert_eq!(c.cognito.jwt_header_name, "Authorization");
    assert_eq!(c.cognito.jwt_header_prefix, "Bearer");
    assert_eq!(c.cognito.primary, None);
    assert_eq!(c.cognito.secondary, None);
    assert!(!c.automation.enabled);
    assert_eq!(c.automation.region, None);
    assert_eq!(c.automation.profile, None);
    assert_eq!(c.automation.common_prefix, "");
    assert_eq!(c.automation.id_header_name, "SMAC-Principal");
    assert_eq!(c.automation.token_header_name, "SMAC-Token");
}

#[test]
fn the_whole_table_is_read() {
    let c = load(&[
        ("SMAC__AUTH__USER_ID", "cognito:username"),
        ("SMAC__AUTH__PROVIDER", "COGNITO"),
        ("SMAC__AUTH__PROVIDER_COGNITO__CHECK_EXPIRATION", "True"),
        ("SMAC__AUTH__PROVIDER_COGNITO__JWT_HEADER_PREFIX", "JWT"),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__JWT_HEADER_NAME",
            "X-Id-Token",
        ),
        PRIMARY[0],
        PRIMARY[1],
        PRIMARY[2],
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__DOMAIN",
            "login.example.com",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__REGION",
            "us-east-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__USERPOOL_ID",
            "us-east-1_Second2",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__APP_CLIENT_ID",
            "second-client",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__DOMAIN",
            "partners.example.com",
        ),
        (
            "SMAC__AUTH__AUTOMATION_PRINCIPALS__SECRETS_MANAGER__REGION",
            "eu-central-1",
        ),
        (
            "SMAC__AUTH__AUTOMATION_PRINCIPALS__SECRETS_MANAGER__PROFILE",
            "ops",
        ),
        (
            "SMAC__AUTH__AUTOMATION_PRINCIPALS__SECRETS_MANAGER__COMMON_PREFIX",
            "services/",
        ),
        (
            "SMAC__AUTH__AUTOMATION_PRINCIPALS__ID_HEADER_NAME",
            "X-Principal",
        ),
        (
            "smac__auth__automation_principals__token_header_name",
            "X-Principal-Token",
        ),
    ])
    .unwrap();
    assert_eq!(c.user_id, "cognito:username");
    assert_eq!(c.provider, Provider::Cognito);
    assert_eq!(c.cognito.jwt_header_prefix, "JWT");
    assert_eq!(c.cognito.jwt_header_name, "X-Id-Token");
    let primary = c.cognito.primary.as_ref().unwrap();
    assert_eq!(
        primary.issuer(),
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Primary1"
    );
    assert_eq!(primary.app_client_id, "primary-client");
    assert_eq!(primary.domain.as_deref(), Some("login.example.com"));
    let secondary = c.cognito.secondary.as_ref().unwrap();
    assert_eq!(secondary.region, "us-east-1");
    assert_eq!(secondary.domain.as_deref(), Some("partners.example.com"));
    assert_eq!(c.pools().count(), 2);
    assert!(c.automation.enabled);
    assert_eq!(c.automation.region.as_deref(), Some("eu-central-1"));
    assert_eq!(c.automation.profile.as_deref(), Some("ops"));
    assert_eq!(c.automation.common_prefix, "services/");
    assert_eq!(c.automation.id_header_name, "X-Principal");
    assert_eq!(c.automation.token_header_name, "X-Principal-Token");
}

#[test]
fn cognito_without_pools_is_refused_with_the_seeds_reason() {
    let e = load(&[("SMAC__AUTH__PROVIDER", "COGNITO")]).unwrap_err();
    assert!(
        e.message()
            .contains("PROVIDER is COGNITO but no user pool is configured"),
        "{}",
        e.message()
    );
    let e = load(&[
        ("SMAC__AUTH__PROVIDER", "cognito"),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__REGION",
            "us-east-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__USERPOOL_ID",
            "us-east-1_x",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__APP_CLIENT_ID",
            "c",
        ),
    ])
    .unwrap_err();
    assert!(
        e.message()
            .contains("the primary user pool must be configured")
    );
}

#[test]
fn sub_with_a_secondary_pool_is_refused_with_the_seeds_reason() {
    let mut env = PRIMARY.to_vec();
    env.extend([
        ("SMAC__AUTH__PROVIDER", "COGNITO"),
        ("SMAC__AUTH__USER_ID", "sub"),
    ]);
    // One pool: `sub` is fine.
    assert_eq!(load(&env).unwrap().user_id, "sub");
    env.extend([
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__REGION",
            "us-east-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__USERPOOL_ID",
            "us-east-1_x",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__APP_CLIENT_ID",
            "c",
        ),
    ]);
    let e = load(&env).unwrap_err();
    assert!(
        e.message()
            .contains("cannot be sub with a secondary user pool"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("creates the sub claim itself"));
}

#[test]
fn check_expiration_false_is_refused_and_true_accepted() {
    for yes in ["True", "true", "1", "yes"] {
        load(&[("SMAC__AUTH__PROVIDER_COGNITO__CHECK_EXPIRATION", yes)]).unwrap();
    }
    for no in ["False", "false", "0", "no"] {
        let e = load(&[("SMAC__AUTH__PROVIDER_COGNITO__CHECK_EXPIRATION", no)]).unwrap_err();
        assert!(e.message().contains("would accept expired tokens"), "{no}");
    }
    let e = load(&[("SMAC__AUTH__PROVIDER_COGNITO__CHECK_EXPIRATION", "maybe")]).unwrap_err();
    assert!(e.message().contains("must be true or false"));
}

#[test]
fn bad_settings_are_named_without_their_values() {
    let e = load(&[("SMAC__AUTH__PROVIDR", "COGNITO")]).unwrap_err();
    assert!(e.message().contains("SMAC__AUTH__PROVIDR is not a setting"));
    let e = load(&[("SMAC__AUTH__PROVIDER", "okta-secret-value")]).unwrap_err();
    assert!(e.message().contains("must be NONE or COGNITO"));
    assert!(!e.message().contains("okta-secret-value"));
    let e = load(&PRIMARY[..2]).unwrap_err();
    assert!(
        e.message()
            .contains("SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__APP_CLIENT_ID missing"),
        "{}",
        e.message()
    );
    let e = load(&[
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION",
            "eu-west-1/../x",
        ),
        PRIMARY[1],
        PRIMARY[2],
    ])
    .unwrap_err();
    assert!(e.message().contains("not an AWS region or user pool id"));
}
