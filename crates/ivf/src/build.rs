//! Writing a new index: metapage and list pages first, then each list's
//! chain as its vectors arrive in any order.
//!
//! Every list fills a page image in memory; a full image is added to the
//! store as one page and linked from the list's previous page. At most
//! `budget_pages` images are held: past that, the fullest is written out
//! early (a partly filled page), so memory stays bounded whatever the
//! number of lists.

use crate::pages::{
    init_data_page, init_list_page, item_len, item_tuple, list_raw, list_tuple, set_list_blocks,
    set_next_block, Meta, INVALID_BLOCK,
};
use crate::Metric;
use pagestore::{page, BlockNumber, Corrupt, PageStore, Tid, PAGE_SIZE};

struct ListState {
    first: BlockNumber,
    last: BlockNumber,
    image: Option<Box<[u8]>>,
    /// Items in `image`.
    pending: usize,
}

pub struct ListWriter<'s, S: PageStore> {
    store: &'s S,
    meta: Meta,
    lists: Vec<ListState>,
    images: usize,
    budget_pages: usize,
    tuples: u64,
}

impl<'s, S: PageStore> ListWriter<'s, S> {
    /// Writes the metapage and list pages (centers, empty chains) into an
    /// empty store.
    pub fn begin(
        store: &'s S,
        dims: usize,
        metric: Metric,
        centers: &[f32],
        budget_bytes: usize,
    ) -> Result<Self, String> {
        assert_eq!(store.nblocks(), 0, "a new index needs an empty store");
        if dims == 0 || dims > crate::pages::max_dims() {
            return Err(format!(
                "vectors of {dims} dimensions do not fit on a page (at most {})",
                crate::pages::max_dims()
            ));
        }
        let lists = centers.len() / dims;
        assert!(lists > 0 && centers.len() == lists * dims);
        let mut meta = Meta {
            dims: dims as u32,
            lists: lists as u32,
            metric,
            list_pages: 0,
        };
        meta.list_pages = meta.lists.div_ceil(meta.lists_per_page());
        store.extend(|_, p| meta.store(p));
        let per = meta.lists_per_page() as usize;
        for chunk in centers.chunks(per * dims) {
            store.extend(|b, p| {
                init_list_page(p);
                for c in chunk.chunks_exact(dims) {
                    let t = page::add_item(p, &list_tuple(INVALID_BLOCK, INVALID_BLOCK, c))
                        .expect("lists_per_page fit a page");
                    debug_assert!(b >= 1 && t >= 1);
                }
            });
        }
        Ok(ListWriter {
            store,
            meta,
            lists: (0..lists)
                .map(|_| ListState {
                    first: INVALID_BLOCK,
                    last: INVALID_BLOCK,
                    image: None,
                    pending: 0,
                })
                .collect(),
            images: 0,
            budget_pages: (budget_bytes / PAGE_SIZE).max(16),
            tuples: 0,
        })
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn tuples(&self) -> u64 {
        self.tuples
    }

    /// Adds a vector (already in the metric's stored form) to list `list`.
    pub fn push(&mut self, list: usize, heap: Tid, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.meta.dims as usize);
        let item = item_tuple(heap, vector);
        loop {
            if self.lists[list].image.is_none() {
                if self.images >= self.budget_pages {
                    self.flush_fullest();
                }
                let mut img = vec![0u8; PAGE_SIZE].into_boxed_slice();
                init_data_page(&mut img);
                self.lists[list].image = Some(img);
                self.images += 1;
            }
            let st = &mut self.lists[list];
            let img = st.image.as_mut().expect("an image");
            if page::add_item(img, &item).is_some() {
                st.pending += 1;
                self.tuples += 1;
                return;
            }
            self.flush(list);
        }
    }

    fn flush_fullest(&mut self) {
        let fullest = (0..self.lists.len())
            .filter(|i| self.lists[*i].image.is_some())
            .max_by_key(|i| self.lists[*i].pending);
        if let Some(i) = fullest {
            self.flush(i);
        }
    }

    /// Adds list `i`'s image as a page at the end of its chain.
    fn flush(&mut self, i: usize) {
        let Some(img) = self.lists[i].image.take() else {
            return;
        };
        self.images -= 1;
        self.lists[i].pending = 0;
        let block = self.store.extend(|b, p| {
            p.copy_from_slice(&img);
            b
        });
        let st = &mut self.lists[i];
        if st.last == INVALID_BLOCK {
            st.first = block;
        } else {
            self.store
                .write(st.last, |p| set_next_block(p, block))
                .expect("a page this writer made");
        }
        st.last = block;
    }

    /// Writes the remaining images and records each list's chain.
    pub fn finish(mut self) -> Result<Meta, Corrupt> {
        for i in 0..self.lists.len() {
            if self.lists[i].pending > 0 {
                self.flush(i);
            }
        }
        let dims = self.meta.dims as usize;
        for (i, st) in self.lists.iter().enumerate() {
            let t = self.meta.list_tid(i as u32);
            self.store.write(t.block, |p| -> Result<(), Corrupt> {
                list_raw(p, t, dims)?;
                set_list_blocks(page::item_mut(p, t.offset)?, st.first, st.last);
                Ok(())
            })?;
        }
        Ok(self.meta)
    }
}

/// Items of `dims` dimensions per data page.
pub fn items_per_page(dims: usize) -> usize {
    (PAGE_SIZE - page::HEADER_SIZE - 8) / (page::maxalign(item_len(dims)) + 4)
}
