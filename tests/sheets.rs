//! Spreadsheets as games, over the real server: `games/NAME.RULES.csv` (or
//! `.xlsx`) in a temp games folder is listed, started, hot-reloaded, reported
//! by file and row when a row is wrong, and replayed from its recording.

mod common;

use common::{TestServer, http, http_with, recess_in, stdout};
use serde_json::{Value, json};

/// Rules that read a spreadsheet: row 1 is a header, then one question per
/// row (`question, answer`); the view shows the question and the params.
const CARDS: &str = r#"
return {
  title = "Flash cards",
  init = function(ctx, params)
    local questions = params.questions or { { text = "Add questions in a spreadsheet" } }
    return { questions = questions, n = 1, title = params.title, pace = params.pace }
  end,
  action = function(state, ctx, player, name)
    if player.role ~= "host" then return false, "only the host turns the cards" end
    state.n = state.n % #state.questions + 1
  end,
  view = function(state)
    local q = state.questions[state.n]
    return { title = state.title, text = q.text, status = tostring(state.pace) }
  end,
  sheet = function(sheet)
    local questions = {}
    for i, row in ipairs(sheet.rows) do
      if i > 1 then
        local cells = row.cells
        if cells[1] == nil or cells[1] == "" then return nil, row.row, "the question is empty" end
        questions[#questions + 1] = { text = cells[1], answer = cells[2] }
      end
    end
    if #questions == 0 then return nil, nil, "there are no questions under the header" end
    return { questions = questions, title = "Cards: " .. #questions, pace = "slow" }
  end,
}
"#;

async fn games_list(server: &TestServer) -> Value {
    let (status, body) = http(server.addr, "GET", "/api/games", None).await;
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

fn entry<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["games"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no game {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_is_a_game_its_rows_start_sessions_and_a_bad_row_keeps_the_good_version() {
    let server = TestServer::with_games(&[
        ("cards.lua", CARDS),
        (
            "capitals.cards.csv",
            "question,answer\nParis is the capital of?,France\nRome?,Italy\n",
        ),
    ])
    .await;
    let mut changes = server.server.as_ref().unwrap().game_changes();
    let listed = games_list(&server).await;
    let capitals = entry(&listed, "capitals");
    assert_eq!(capitals["title"], "Cards: 2");
    assert_eq!(capitals["status"], "ok");
    assert_eq!(entry(&listed, "cards")["title"], "Flash cards");

    // A host starts it like any game; their own params override the sheet's.
    let mut host = server.client().await;
    let w = host.host("capitals", json!({ "pace": "fast" })).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let v = host
        .wait_view(&session, |v| v["text"] == "Paris is the capital of?")
        .await;
    assert_eq!(v["title"], "Cards: 2");
    assert_eq!(v["status"], "fast");

    // A bad row: file and row in the API and to the host; the good version
    // keeps serving, and the running session keeps its questions.
    server.write_game(
        "capitals.cards.csv",
        "question,answer\nParis is the capital of?,France\n,Italy\n",
    );
    let message = loop {
        match changes.recv().await.unwrap() {
            recess::script::GameChange::Broken { game, message } if game == "capitals" => {
                break message;
            }
            _ => {}
        }
    };
    assert_eq!(message, "capitals.cards.csv:3: the question is empty");
    let notice = host
        .recv_until(|v| v["type"] == "error" && v["code"] == "game_broken")
        .await;
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("capitals.cards.csv:3: the question is empty"),
        "{notice}"
    );
    let listed = games_list(&server).await;
    let capitals = entry(&listed, "capitals");
    assert_eq!(capitals["status"], "error");
    assert_eq!(
        capitals["error"],
        "capitals.cards.csv:3: the question is empty"
    );
    assert_eq!(capitals["title"], "Cards: 2");
    assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
    host.wait_view(&session, |v| v["text"] == "Rome?").await;

    // Fixed: new sessions get the new rows.
    server.write_game("capitals.cards.csv", "question\nLisbon?\nMadrid?\nOslo?\n");
    loop {
        if let recess::script::GameChange::Updated { game, .. } = changes.recv().await.unwrap()
            && game == "capitals"
        {
            break;
        }
    }
    let mut other = server.client().await;
    let w = other.host("capitals", json!({})).await;
    let second = w["session"].as_str().unwrap().to_owned();
    let v = other.wait_view(&second, |v| v["text"] == "Lisbon?").await;
    assert_eq!(v["title"], "Cards: 3");
    assert_eq!(v["status"], "slow");
    server.stop().await;
}

#[test]
fn recess_check_names_the_file_and_row_of_a_bad_sheet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cards.lua"), CARDS).unwrap();
    std::fs::write(dir.path().join("good.cards.csv"), "q\nOne?\n").unwrap();
    std::fs::write(
        dir.path().join("bad.cards.csv"),
        "q\nOne?\n\n,no question\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.cards.csv"), "q\n").unwrap();
    let out = recess_in(dir.path(), &["check", "."]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"./bad.cards.csv:4: the question is empty"),
        "{text}"
    );
    assert!(
        lines.contains(&"./empty.cards.csv: there are no questions under the header"),
        "{text}"
    );
    assert!(lines.contains(&"ok  good"), "{text}");

    // One file checked alone.
    let out = recess_in(dir.path(), &["check", "good.cards.csv"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_game_is_recorded_with_its_rows_and_replays_identically() {
    let games = tempfile::tempdir().unwrap();
    std::fs::write(games.path().join("cards.lua"), CARDS).unwrap();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write(0, 0, "Question").unwrap();
    sheet.write(1, 0, "How many legs has an insect?").unwrap();
    sheet.write(1, 1, 6).unwrap();
    sheet.write(2, 0, "Boiling point of water?").unwrap();
    book.save(games.path().join("science.cards.xlsx")).unwrap();
    let server = TestServer::start_in(games, |_| {}).await;

    let mut host = server.client().await;
    let w = host.host("science", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    host.wait_view(&session, |v| v["text"] == "How many legs has an insect?")
        .await;
    // A student is refused what only the host may do.
    let mut ana = server.client().await;
    ana.join(w["code"].as_str().unwrap(), "Ana").await;
    let refused = ana.try_act(&session, "next", json!({})).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
    host.wait_view(&session, |v| v["text"] == "Boiling point of water?")
        .await;

    let path = format!("/api/sessions/{session}/recording?token={token}");
    let (status, body) = http_with(server.addr, "GET", &path, "", "").await;
    assert_eq!(status, 200, "{body}");
    let recording: Value = serde_json::from_str(&body).unwrap();
    let files = recording["rules"][0]["files"].as_object().unwrap();
    assert_eq!(
        files["science.cards.csv"],
        "Question\nHow many legs has an insect?,6\nBoiling point of water?\n"
    );
    assert!(files.contains_key("cards.lua"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("recording.json"), &body).unwrap();
    let out = recess_in(dir.path(), &["replay", "recording.json"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rules: science as recorded"), "{text}");
    assert!(text.contains("identical:"), "{text}");

    // Against the games folder (the same rows): the recorded version.
    let games = server.games.path().to_str().unwrap();
    let out = recess_in(dir.path(), &["replay", "recording.json", "--games", games]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("(the recorded version)"), "{text}");
    server.stop().await;
}

/// The quiz's own rules read each broken spreadsheet a teacher might save:
/// every problem named by file and row, by `recess check` and by the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_quiz_spreadsheets_are_reported_with_file_and_row() {
    let games = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::shipped_games().join("quiz.lua"),
        games.path().join("quiz.lua"),
    )
    .unwrap();
    let write = |name: &str, text: &str| std::fs::write(games.path().join(name), text).unwrap();
    write(
        "nocolumn.quiz.csv",
        "Text,Answer 1,Answer 2,Correct\nCapital of France?,Paris,Rome,1\n",
    );
    write(
        "badanswer.quiz.csv",
        "question,answer 1,answer 2,answer 3,answer 4,correct\n\
         Capital of France?,Berlin,Paris,Rome,Madrid,2\n\
         Capital of Spain?,Berlin,Paris,Rome,Madrid,5\n",
    );
    write(
        "emptyquestion.quiz.csv",
        "question,answer 1,answer 2,correct\nCapital of France?,Paris,Rome,1\n,Oslo,Bergen,1\n",
    );
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, heading) in ["Question", "Answer 1", "Answer 2", "Correct answer(s)"]
        .iter()
        .enumerate()
    {
        sheet.write(0, col as u16, *heading).unwrap();
    }
    sheet.write(1, 0, "2 + 2?").unwrap();
    sheet.write(1, 1, 4).unwrap();
    sheet.write(1, 2, 5).unwrap();
    sheet.write_formula(1, 3, "=1+0").unwrap();
    book.save(games.path().join("formula.quiz.xlsx")).unwrap();

    let expected = [
        (
            "badanswer",
            "badanswer.quiz.csv:3: the correct answer must be 1–4, got 5",
        ),
        (
            "emptyquestion",
            "emptyquestion.quiz.csv:3: the question is empty",
        ),
        (
            "formula",
            "formula.quiz.xlsx:2: cell D2 holds a formula (=1+0); type its value instead",
        ),
        (
            "nocolumn",
            "nocolumn.quiz.csv: there is no row of headings with a 'question' column: put headings such as question, choice 1, choice 2, correct above the questions",
        ),
    ];
    let out = recess_in(games.path(), &["check", "."]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    for (_, message) in expected {
        assert!(
            text.lines().any(|l| l == format!("./{message}")),
            "{message} in:\n{text}"
        );
    }
    assert!(text.lines().any(|l| l == "ok  quiz"), "{text}");

    let server = TestServer::start_in(games, |_| {}).await;
    let listed = games_list(&server).await;
    for (game, message) in expected {
        let entry = entry(&listed, game);
        assert_eq!(entry["status"], "error", "{entry}");
        assert_eq!(entry["error"], message, "{entry}");
    }
    server.stop().await;
}
