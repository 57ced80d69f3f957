//! The clouds' APIs over the one model: each face is routing, (de)serialisation, its own error
//! format and its own authentication.

pub mod aliyun;
pub mod huawei;
