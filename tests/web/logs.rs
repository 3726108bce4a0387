//! The live log's API: lines filtered by level, target and text, read on
//! from a line number; a bad level said; the download.

use super::*;

#[tokio::test]
async fn the_log_is_read_on_filtered_and_downloaded() {
    init_logs();
    let site = site(&[1], &[("intro.yaml", INTRO)], "");
    site.set_web_token_as("log-key", "technician");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let get = |path: &str| {
        Request::builder()
            .uri(path)
            .header(header::AUTHORIZATION, "Bearer log-key")
            .body(Body::empty())
            .unwrap()
    };
    tracing::warn!(target: "logs_test", "the first api-log-marker");
    tracing::error!(target: "logs_test", "the second api-log-marker\nforged line");
    let (status, _, body) = call(
        app_for(&room),
        get("/api/logs?q=api-log-marker&target=logs_test"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    let texts: Vec<&str> = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "the first api-log-marker",
            "the second api-log-marker\\nforged line"
        ]
    );
    let next = v["next"].as_u64().unwrap();
    let (_, _, body) = call(
        app_for(&room),
        get("/api/logs?q=api-log-marker&level=error"),
    )
    .await;
    assert_eq!(
        json(&body)["lines"].as_array().unwrap().len(),
        1,
        "errors only"
    );
    tracing::warn!(target: "logs_test", "the third api-log-marker");
    let (_, _, body) = call(
        app_for(&room),
        get(&format!("/api/logs?q=api-log-marker&after={next}")),
    )
    .await;
    let later = json(&body);
    assert_eq!(
        later["lines"][0]["text"], "the third api-log-marker",
        "{later}"
    );
    let (status, _, body) = call(app_for(&room), get("/api/logs?level=loud")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(&body)["error"],
        "`loud` is not a level: error, warn, info, debug or trace"
    );
    let (status, h, body) = call(app_for(&room), get("/api/logs.txt?q=api-log-marker")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        h[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("roomctl.log")
    );
    let text = String::from_utf8(body).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().all(|l| l.contains(" logs_test: the ")),
        "{text}"
    );
    room.shutdown(Role::Daemon).await;
}
