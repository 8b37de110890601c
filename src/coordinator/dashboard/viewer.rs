//! Who is looking at a page: the admin (signed in, or sending the admin
//! token) or anyone else. `access` reads it from a request.

/// Who is looking at a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Admin,
    Anyone,
}

impl Viewer {
    pub fn is_admin(self) -> bool {
        self == Viewer::Admin
    }
}
