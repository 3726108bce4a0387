//! A minimal W3C WebDriver client for chromedriver + headless Chromium: just
//! what the dashboard test needs (navigate, find, click, text, script).

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    _driver: tokio::process::Child,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and Chromium, or why not. Set ROOMCTL_SKIP_BROWSER=1 to skip
/// the browser tests explicitly on a machine without them.
pub fn available() -> Result<(), String> {
    for p in ["/usr/bin/chromedriver", "/usr/bin/chromium"] {
        if !std::path::Path::new(p).exists() {
            return Err(format!(
                "{p} is missing (apt-get install -y chromium chromium-driver)"
            ));
        }
    }
    Ok(())
}

impl Browser {
    pub async fn start() -> Browser {
        let port = roomctl::broker::free_port().unwrap();
        let driver = tokio::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("roomctl-chromium-{}", rand::random::<u32>()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Browser {
            http,
            base,
            session,
            _driver: driver,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs JavaScript in the page and returns its result.
    pub async fn js(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The WebDriver id of the first element matching `css`.
    async fn element(&self, css: &str) -> String {
        let e = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        e[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {e}"))
            .to_string()
    }

    /// Clicks `css` as a person would: scrolled to the middle of the
    /// window first (a person scrolls it out from under the page's sticky
    /// bar), then a real click, refused if something covers it.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        let quoted = serde_json::to_string(css).unwrap();
        self.js(&format!(
            "const e = document.querySelector({quoted}); if (e && !e.closest('#frontdesk, #tabs')) e.scrollIntoView({{block: 'center'}}); return true;"
        ))
        .await;
        let r = self
            .cmd(
                reqwest::Method::POST,
                &format!("/element/{id}/click"),
                Some(json!({})),
            )
            .await;
        assert!(r.is_null(), "click {css} failed: {r}");
    }

    /// Types `text` into the field `css`, as a person would, after
    /// clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        let clear = format!("/element/{id}/clear");
        let r = self
            .cmd(reqwest::Method::POST, &clear, Some(json!({})))
            .await;
        assert!(r.is_null(), "clear {css} failed: {r}");
        let value = format!("/element/{id}/value");
        let r = self
            .cmd(reqwest::Method::POST, &value, Some(json!({"text": text})))
            .await;
        assert!(r.is_null(), "typing into {css} failed: {r}");
    }

    /// The text of the first element matching `css` ("" if none).
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : '';",
            serde_json::to_string(css).unwrap()
        );
        self.js(&script).await.as_str().unwrap_or("").to_string()
    }

    /// Waits until `script` (an expression) is truthy in the page.
    pub async fn wait_for(&self, what: &str, expr: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let v = self.js(&format!("return !!({expr});")).await;
            if v == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let body = self.js("return document.body.innerText;").await;
                panic!(
                    "timed out waiting for {what}; page:\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sets the window size (CSS pixels in headless Chromium).
    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        if let Some(png) = v
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        {
            let _ = std::fs::write(path, png);
        }
    }

    /// Fails (saying `what`) when the page is wider than the window:
    /// nothing may stick out sideways at any width tested.
    pub async fn assert_fits(&self, what: &str) {
        let overflow = self
            .js("return document.documentElement.scrollWidth - window.innerWidth;")
            .await;
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "{what}: {overflow} px too wide"
        );
    }

    /// Saves a screenshot as `<name>.png` in `ROOMCTL_SCREENSHOTS`, when set.
    pub async fn snapshot(&self, name: &str) {
        if let Ok(dir) = std::env::var("ROOMCTL_SCREENSHOTS") {
            self.screenshot(&std::path::Path::new(&dir).join(format!("{name}.png")))
                .await;
        }
    }

    pub async fn quit(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}
