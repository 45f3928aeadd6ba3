//! example-opa, driven as its printed `curl` lines drive it: the policy's
//! own tests, then the application against the mock provider and the
//! embedded engine.

use example_opa::{CONFIG_FILE, USER_FILE, app, demo_tokens, policy_config, policy_dir};
use portcullis_axum::portcullis_policy::{Policy, run_policy_tests};
use portcullis_testing::demo;
use portcullis_testing::{AppTester, serve};

#[test]
fn the_policy_passes_its_tests() {
    let passed = run_policy_tests(policy_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(passed.len(), 9, "{passed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_scenario() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let addr = listener.local_addr().expect("an address");
    let mock = demo::start_mock_provider(addr, CONFIG_FILE, USER_FILE)
        .await
        .expect("the demo mode starts");
    let config = policy_config(Vec::new()).expect("the default policy configuration");
    let policy = Policy::from_config(&config)
        .await
        .expect("the policy loads");
    let router = app(mock.rp.clone(), policy).expect("the application");
    let stop = serve::axum(listener, router).expect("the server starts");
    let app = AppTester::serving(format!("http://{addr}"), "", stop);
    let client = app.client(None).await;
    let [alice, frank] = demo_tokens(&mock.provider);

    // Guests read /public only, and are asked to log in elsewhere.
    assert_eq!(client.get("/public").expect(200).await.text(), "public\n");
    let resp = client.get("/finance/salary/alice").expect(401).await;
    assert!(resp.header("www-authenticate").is_some());
    client.post("/records").body("{}").expect(401).await;

    // A user reads her own salary, no one else's.
    let own = client
        .get("/finance/salary/alice")
        .bearer(&alice)
        .expect(200)
        .await;
    assert_eq!(own.text(), "salary of alice");
    let other = client
        .get("/finance/salary/bob")
        .bearer(&alice)
        .expect(403)
        .await;
    assert_eq!(other.json()["error"], "forbidden");
    // `%2F` stays in its segment: no way to her own path by encoding.
    client
        .get("/finance/salary/alice%2F..%2Fbob")
        .bearer(&alice)
        .expect(403)
        .await;
    client
        .post("/records")
        .bearer(&alice)
        .body("{}")
        .expect(403)
        .await;

    // Finance reads anyone's and posts records; the body reaches the handler.
    let any = client
        .get("/finance/salary/bob")
        .bearer(&frank)
        .expect(200)
        .await;
    assert_eq!(any.text(), "salary of bob");
    let posted = client
        .post("/records")
        .bearer(&frank)
        .body(r#"{"amount": 3}"#)
        .expect(200)
        .await;
    assert_eq!(posted.text(), "recorded 13 bytes\n");
    // Every method goes through the policy.
    client
        .request(axum::http::Method::DELETE, "/finance/salary/alice")
        .bearer(&alice)
        .expect(403)
        .await;

    // The login flow is on the skip list: a guest reaches the login page.
    let login = client.get("/login").without_cookies().send().await;
    assert_eq!(login.status, 303, "the login page sends to the provider");
}
