//! The clouds' APIs over the one model: each face is routing, (de)serialisation, its own error
//! format and its own authentication.

pub mod admin;
pub mod agent;
pub mod aliyun;
pub mod huawei;
