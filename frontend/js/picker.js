// Choosing a photo: the gallery thumbnails (GET /gallery, each with its name),
// the upload button and dropping a file on the page. An uploaded photo gets a
// thumbnail of its own at the head of the strip. A chosen file is decoded by
// the browser; when it cannot be, the API is asked for its verdict so the
// error shown is the API's own plain words. A dropped session file (.json)
// goes to `onSession`.

import * as api from './api.js';
import { decodeImage, thumbnailUrl } from './imaging.js';

const isSessionFile = (file) => file.type === 'application/json' || /\.json$/i.test(file.name);

export class PhotoPicker {
  /**
   * @param {{gallery: HTMLElement, upload: HTMLInputElement, messages,
   *          onPhoto: (bitmap, title, source) => Promise, onSession: (file) => void}} parts
   */
  constructor({ gallery, upload, messages, onPhoto, onSession }) {
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
      if (isSessionFile(file)) onSession(file);
      else this.open(file, file.name);
    });
  }

  #thumb(title, imageUrl, label) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'thumb';
    button.title = title;
    button.setAttribute('aria-label', label);
    button.setAttribute('aria-pressed', 'false');
    const img = document.createElement('img');
    img.src = imageUrl;
    img.alt = '';
    const name = document.createElement('span');
    name.className = 'thumb-name';
    name.textContent = title;
    name.setAttribute('aria-hidden', 'true');
    button.append(img, name);
    return button;
  }

  /** Fill the gallery from the API; returns its images. */
  async showGallery() {
    const { images } = await api.getGallery();
    this.gallery.querySelectorAll('.thumb:not(.uploaded)').forEach((b) => b.remove());
    for (const image of images) {
      const button = this.#thumb(image.title, image.url, `Use the photo “${image.title}”`);
      button.dataset.imageId = image.id;
      button.addEventListener('click', () => this.open(image.url, image.title, button));
      this.gallery.append(button);
    }
    return images;
  }

  /** Mark the thumbnail of the photo being edited (none for a restored session). */
  press(thumb) {
    for (const b of this.gallery.querySelectorAll('.thumb')) b.setAttribute('aria-pressed', String(b === thumb));
  }

  /** Load a URL or a File as the new photo. */
  async open(source, title, thumb = null) {
    this.messages.clearError();
    let bitmap;
    try {
      bitmap = await decodeImage(source);
    } catch (err) {
      this.messages.showError(await this.#verdict(source, err), `“${title}” cannot be used`);
      return;
    }
    if (!thumb && source instanceof Blob) thumb = this.#addUploadThumb(bitmap, title);
    this.press(thumb);
    try {
      await this.onPhoto(bitmap, title, { kind: source instanceof Blob ? 'upload' : 'gallery', thumb });
    } catch (err) {
      this.messages.showError(err, `Could not classify “${title}”`);
    }
  }

  /** An uploaded photo's thumbnail, first in the strip; choosing it again reloads it. */
  #addUploadThumb(bitmap, title) {
    const button = this.#thumb(title, thumbnailUrl(bitmap), `Use your photo “${title}”`);
    button.classList.add('uploaded');
    button.addEventListener('click', () => {
      this.press(button);
      this.onPhoto(bitmap, title, { kind: 'upload', thumb: button })
        .catch((err) => this.messages.showError(err, `Could not classify “${title}”`));
    });
    this.gallery.prepend(button);
    return button;
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
