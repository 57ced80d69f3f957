//! Packet engine (see issue 4).
