//! Unit tests of the event log: every frame and every typed event exactly once, in
//! order, from any resume point.

use super::*;

fn frame_text(seq: u64, len: usize) -> Vec<u8> {
    format!("id: {seq}\ndata: {}\n\n", "x".repeat(len)).into_bytes()
}

/// Whatever the freeze points (one per subscriber wake), every reader sees each
/// frame exactly once, in order, from any resume point.
#[test]
fn the_log_hands_out_every_frame_once_from_any_point() {
    for freeze_every in [1u64, 2, 3, 7, 1000] {
        let mut log = EventLog::default();
        let mut all = Vec::new();
        for seq in 1..=40u64 {
            // Sizes cross the block boundaries, including one frame larger than a block.
            let f = frame_text(
                seq,
                if seq == 20 {
                    70_000
                } else {
                    (seq as usize * 37) % 900
                },
            );
            all.push(f.clone());
            log.append(|out| out.extend_from_slice(&f));
            if seq % freeze_every == 0 {
                log.freeze();
            }
        }
        assert_eq!(log.len(), 40);
        for after in 0..=40u64 {
            let frames = log.frames_after(after);
            let want: Vec<&[u8]> = all[after as usize..].iter().map(Vec::as_slice).collect();
            let got: Vec<&[u8]> = frames.iter().map(|b| b.as_ref()).collect();
            assert_eq!(
                got, want,
                "frames after {after}, freeze every {freeze_every}"
            );

            let mut out = VecDeque::new();
            let end = log.bytes_from(log.offset_after(after), &mut out);
            assert_eq!(end, log.total_bytes());
            let joined: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
            assert_eq!(joined, want.concat(), "bytes after {after}");
        }
    }
}

#[test]
fn a_reader_that_is_up_to_date_gets_nothing() {
    let mut log = EventLog::default();
    log.append(|out| out.extend_from_slice(b"id: 1\n\n"));
    let mut out = VecDeque::new();
    let end = log.bytes_from(0, &mut out);
    assert_eq!(out.len(), 1);
    out.clear();
    assert_eq!(log.bytes_from(end, &mut out), end);
    assert!(out.is_empty());
    assert!(log.frames_after(1).is_empty());
}

fn status(detail: &str) -> Event {
    Event::Status(crate::model::events::StatusEvent {
        agent: None,
        state: crate::model::events::AgentState::Running,
        detail: detail.to_string(),
    })
}

/// The typed view and the frames say the same thing, event for event, from any
/// resume point; tokens of several agents keep their own agent and text.
#[test]
fn typed_events_match_their_frames_from_any_point() {
    let mut log = EventLog::default();
    let mut want = Vec::new();
    for i in 0..30u64 {
        let seq = match i % 3 {
            0 => log.append_event(status(&format!("step {i}"))),
            1 => log.append_token("writer", &format!("w{i} \"q\"\n")),
            _ => log.append_token("analyst", &format!("a{i}")),
        };
        assert_eq!(seq, i + 1, "seqs are consecutive from 1");
        want.push(seq);
        if i % 4 == 0 {
            log.freeze();
        }
    }
    let frames = log.frames_after(0);
    for after in 0..=30u64 {
        let mut seen = Vec::new();
        log.visit_after(after, |seq, event| {
            let frame = String::from_utf8(frames[seq as usize - 1].to_vec()).unwrap();
            let (fseq, name, data) = crate::model::events::parse_frame(frame.as_bytes()).unwrap();
            assert_eq!((fseq, name), (seq, event.name()));
            assert_eq!(data, event.data_json(), "event {seq}");
            seen.push(seq);
        });
        assert_eq!(seen, want[after as usize..], "events after {after}");
    }
    let mut tokens = Vec::new();
    log.visit_after(0, |_, e| {
        if let EventRef::Token { agent, text } = e {
            tokens.push(format!("{agent}:{text}"));
        }
    });
    assert_eq!(tokens[0], "writer:w1 \"q\"\n");
    assert_eq!(tokens[1], "analyst:a2");
    assert_eq!(tokens.len(), 20);
    assert_eq!(log.agents.len(), 2, "agent names are kept once each");
}

#[test]
fn a_resume_point_past_the_end_visits_nothing() {
    let mut log = EventLog::default();
    log.append_token("writer", "x");
    let mut n = 0;
    log.visit_after(1, |_, _| n += 1);
    log.visit_after(99, |_, _| n += 1);
    assert_eq!(n, 0);
}
