// Choosing a photo: the gallery thumbnails (GET /gallery), the upload button
// and dropping a file on the page. A chosen file is decoded by the browser;
// when it cannot be, the API is asked for its verdict so the error shown is
// the API's own plain words.

import * as api from './api.js';
import { decodeImage } from './imaging.js';

export class PhotoPicker {
  /**
   * @param {{gallery: HTMLElement, upload: HTMLInputElement, messages, onPhoto: (bitmap, title) => Promise}} parts
   */
  constructor({ gallery, upload, messages, onPhoto }) {
    this.gallery = gallery;
    this.upload = upload;
    this.messages = messages;
    this.onPhoto = onPhoto;
    upload.addEventListener('change', () => {
      const file = upload.files[0];
      upload.value = ''; // choosing the same file again must still load it
      if (file) this.open(file, file.name);
    });
    // Dropping a file anywhere on the page loads it too.
    document.addEventListener('dragover', (e) => e.preventDefault());
    document.addEventListener('drop', (e) => {
      const file = e.dataTransfer?.files?.[0];
      if (!file) return;
      e.preventDefault();
      this.open(file, file.name);
    });
  }

  /** Fill the gallery from the API; returns its images. */
  async showGallery() {
    const { images } = await api.getGallery();
    this.gallery.replaceChildren();
    for (const image of images) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'thumb';
      button.dataset.imageId = image.id;
      button.title = image.title;
      button.setAttribute('aria-label', `Use the photo “${image.title}”`);
      button.setAttribute('aria-pressed', 'false');
      const img = document.createElement('img');
      img.src = image.url;
      img.alt = '';
      img.loading = 'lazy';
      button.append(img);
      button.addEventListener('click', () => this.open(image.url, image.title, button));
      this.gallery.append(button);
    }
    return images;
  }

  /** Load a URL or a File as the new photo. */
  async open(source, title, thumb = null) {
    for (const b of this.gallery.querySelectorAll('.thumb')) b.setAttribute('aria-pressed', String(b === thumb));
    this.messages.clearError();
    let bitmap;
    try {
      bitmap = await decodeImage(source);
    } catch (err) {
      this.messages.showError(await this.#verdict(source, err), `“${title}” cannot be used`);
      return;
    }
    try {
      await this.onPhoto(bitmap, title);
    } catch (err) {
      this.messages.showError(err, `Could not classify “${title}”`);
    }
  }

  /** The API's words for a file the browser could not decode, else the browser's. */
  async #verdict(source, browserError) {
    if (!(source instanceof Blob)) return browserError;
    try {
      await api.classify({ image: source, topK: 1 });
    } catch (apiError) {
      return apiError;
    }
    return new Error('The server can read this file but the browser cannot display it; ' +
      'convert it to PNG, JPEG or WebP.');
  }
}
