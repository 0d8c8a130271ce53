//! Chat lines and commands from members: the room takes any bytes (a member that sends them
//! may be dropped, never the room).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let room = sockit::chat::Room::new(sockit::chat::RoomConfig::default());
    let (Ok(a), Ok(_b)) = (room.join(), room.join()) else {
        return;
    };
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let _ = room.input(a.id, lines.iter().copied());
    let text = sockit::chat::text::clean(data);
    let _ = sockit::chat::command::Command::parse(&text);
    let _ = sockit::chat::text::check_nick(&text);
});
