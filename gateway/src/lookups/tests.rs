use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

fn ttls(found: Duration, unavailable: Duration) -> Ttls {
    Ttls { found, unavailable, ..TTLS }
}

const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(50);

fn counted(calls: &Arc<AtomicU32>, answer: Lookup<String>) -> impl Future<Output = Lookup<String>> + use<> {
    let calls = calls.clone();
    async move {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer
    }
}

fn found(v: &str) -> Lookup<String> {
    Lookup::Found(v.to_owned())
}

fn value(answer: Lookup<String>) -> String {
    match answer {
        Lookup::Found(v) => v,
        other => panic!("not found: {other:?}"),
    }
}

#[test]
fn each_kind_of_answer_is_kept_as_long_as_it_deserves() {
    assert_eq!(TTLS.of(&found("loja")), Duration::from_secs(60));
    assert_eq!(TTLS.of(&Lookup::<String>::Missing("no".into())), Duration::from_secs(10));
    let down = Lookup::<String>::Unavailable { message: "down".into(), retry_after: None };
    assert_eq!(TTLS.of(&down), Duration::from_secs(1));
    assert_eq!(TTLS.recheck, Duration::from_secs(1));
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch_and_answers_expire() {
    let answers = Arc::new(Answers::<String>::new(ttls(LONG, LONG)));
    let calls = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (answers, fetch) = (answers.clone(), counted(&calls, found("loja")));
            tokio::spawn(async move { answers.get("k".into(), fetch).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(value(t.await.unwrap()), "loja");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Past its time an answer is fetched again.
    let answers = Answers::<String>::new(ttls(SHORT, LONG));
    answers.get("k".into(), counted(&calls, found("old"))).await;
    tokio::time::sleep(SHORT * 2).await;
    assert_eq!(value(answers.get("k".into(), counted(&calls, found("new"))).await), "new");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unavailable_answer_is_kept_for_its_short_time_only() {
    let down = || async { Lookup::Unavailable { message: "down".into(), retry_after: None } };
    let kept = Answers::<String>::new(ttls(LONG, LONG));
    assert!(matches!(kept.get("k".into(), down()).await, Lookup::Unavailable { .. }));
    assert!(matches!(kept.get("k".into(), async { found("x") }).await, Lookup::Unavailable { .. }));

    let brief = Answers::<String>::new(ttls(LONG, SHORT));
    assert!(matches!(brief.get("k".into(), down()).await, Lookup::Unavailable { .. }));
    tokio::time::sleep(SHORT * 2).await;
    assert_eq!(value(brief.get("k".into(), async { found("x") }).await), "x");
}

#[tokio::test(start_paused = true)]
async fn a_recheck_refetches_answers_over_its_age_and_forget_drops_them() {
    let answers = Answers::<String>::new(TTLS);
    assert_eq!(value(answers.get("k".into(), async { found("old") }).await), "old");
    // Under the age: the cached answer, without a call.
    assert_eq!(value(answers.recheck("k".into(), async { found("new") }).await), "old");
    tokio::time::advance(Duration::from_millis(1100)).await;
    assert_eq!(value(answers.get("k".into(), async { found("new") }).await), "old");
    assert_eq!(value(answers.recheck("k".into(), async { found("new") }).await), "new");
    answers.forget("k").await;
    assert_eq!(value(answers.get("k".into(), async { found("newer") }).await), "newer");
}

#[tokio::test(start_paused = true)]
async fn concurrent_rechecks_make_one_call() {
    let answers = Arc::new(Answers::<String>::new(TTLS));
    let calls = Arc::new(AtomicU32::new(0));
    answers.get("k".into(), counted(&calls, found("old"))).await;
    tokio::time::advance(Duration::from_millis(1100)).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (answers, fetch) = (answers.clone(), counted(&calls, found("new")));
            tokio::spawn(async move { answers.recheck("k".into(), fetch).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(value(t.await.unwrap()), "new");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn secrets_do_not_print() {
    assert_eq!(format!("{:?}", Secret::new(b"hunter2")), "Secret(***)");
}
